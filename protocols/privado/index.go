package privado

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/agentd/agentd/agent"
)

// Interaction indexes. Interaction ids begin with their creation time
// (newInteractionID), so an index key made of the inverted time and the
// rest of the id lists interactions newest first in the records' key
// order: one index for all, one per user, one per exchange, each entry
// written with the interaction in the same unit of work. Undecided
// interactions are also indexed by their consent expiry, which the sweep
// walks only as far as now. Listings and the sweep thus read what they
// return, not every interaction.

// newestKey is id's key in the newest-first order.
func newestKey(id string) string {
	if len(id) < 16 {
		return id
	}
	var t [8]byte
	if _, err := hex.Decode(t[:], []byte(id[:16])); err != nil {
		return id
	}
	for i := range t {
		t[i] = ^t[i]
	}
	return hex.EncodeToString(t[:]) + id[16:]
}

// pendingKey is id's key in the expiry index.
func pendingKey(expires time.Time, id string) string {
	return fmt.Sprintf("%016x/%s", uint64(expires.UnixNano()), id)
}

// saveNew stores a new interaction with its index entries.
func saveNew(w *agent.Work, in *Interaction) error {
	nk := newestKey(in.ID)
	w.Put(KindNewest, nk, nil)
	w.Put(KindByUser, in.UserID+"/"+nk, nil)
	w.Put(KindByExchange, in.ExchangeID+"/"+nk, nil)
	return save(w, in)
}

// save stores an interaction, keeping its expiry index entry while it is
// undecided.
func save(w *agent.Work, in *Interaction) error {
	if in.State == StateProofRequest {
		w.Put(KindPending, pendingKey(in.ConsentExpires, in.ID), nil)
	} else {
		w.Delete(KindPending, pendingKey(in.ConsentExpires, in.ID))
	}
	return w.PutJSON(KindInteraction, in.ID, in)
}

// walkNewest calls fn with the interactions of the index kind under prefix
// ("" for KindNewest), newest first, starting after the interaction before
// ("" for the newest), until fn returns false.
func (s *Service) walkNewest(ctx context.Context, kind, prefix, before string, fn func(*Interaction) bool) error {
	after := prefix
	if before != "" {
		after = prefix + newestKey(before)
	}
	for {
		recs, err := s.cfg.Store.Records.List(ctx, kind, after, 256)
		if err != nil {
			return err
		}
		for _, r := range recs {
			if !strings.HasPrefix(r.ID, prefix) {
				return nil
			}
			after = r.ID
			b, err := s.cfg.Store.Records.Get(ctx, KindInteraction, newestKey(r.ID[len(prefix):]))
			if err != nil {
				if isNotFound(err) {
					continue
				}
				return err
			}
			var in Interaction
			if json.Unmarshal(b, &in) != nil {
				continue
			}
			if !fn(&in) {
				return nil
			}
		}
		if len(recs) < 256 {
			return nil
		}
	}
}
