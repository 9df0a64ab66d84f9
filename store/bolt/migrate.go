package bolt

import (
	"maps"
	"slices"

	"go.etcd.io/bbolt"
)

// Migration: moving what the journal holds into the database file (see
// journal.go).

// migrateSet writes s into the file in tx: the queued records with their
// expiry entries and counters, the replay keys as runs (replayruns.go),
// the queue's sequence and the LSN of s's last frame.
func (db *DB) migrateSet(tx *bbolt.Tx, s *pendSet) error {
	b := db.queueOf(tx)
	if n := len(s.seqs); n > 0 && s.seqs[n-1] > b.data.Sequence() {
		if err := b.data.SetSequence(s.seqs[n-1]); err != nil {
			return err
		}
	}
	b.data.FillPercent = 1
	for _, seq := range s.seqs {
		if err := b.putRecord(seq, s.msgs[seq]); err != nil {
			return err
		}
	}
	for _, r := range slices.Sorted(maps.Keys(s.rcpt)) {
		c := s.rcpt[r]
		if err := b.account([]byte(r), c[0], c[1]); err != nil {
			return err
		}
	}
	entries := make([]runEntry, 0, len(s.replay))
	for k, exp := range s.replay {
		entries = append(entries, runEntry{digestOf([]byte(k)), be64(exp)})
	}
	if err := db.writeRuns(tx, entries); err != nil {
		return err
	}
	return tx.Bucket(bMeta).Put(kJournalLSN, putBE64(s.lsn))
}

// boltUpdate runs fn in a bbolt write transaction that first migrates
// whatever is pending, once a migration in progress has ended, and drops
// the sets it migrated once the transaction has committed. The caller
// holds wmu.
func (db *DB) boltUpdate(fn func(*bbolt.Tx) error) error {
	db.mmu.Lock()
	defer db.mmu.Unlock()
	db.fileRecs.forget()   // fn may write records
	sets := db.pend.sets() // the migrator is not running: no lock needed to read
	var seq uint64
	err := db.bolt.Update(func(tx *bbolt.Tx) error {
		// Migrating the sets takes the queue's sequence past every
		// sequence given out (db.seq is the last of the active set's).
		for _, s := range sets {
			if err := db.migrateSet(tx, s); err != nil {
				return err
			}
		}
		if err := fn(tx); err != nil {
			return err
		}
		seq = tx.Bucket(bQueue).Bucket(bData).Sequence()
		return nil
	})
	if err != nil {
		return err
	}
	db.seq = seq
	if len(sets) > 0 {
		db.pend.mu.Lock()
		db.pend.frz = nil
		db.pend.act = db.pend.act.next()
		db.pend.mu.Unlock()
		if db.jnl != nil {
			db.jnl.off = 0 // both files' frames are in the file now
			db.jnl.migrations.Add(int64(len(sets)))
		}
	}
	return nil
}

// freeze makes the active set the frozen one and wakes the migrator,
// unless a migration is in progress or nothing is pending. Frames go to
// the other journal file from now on. The caller holds wmu.
func (db *DB) freeze() {
	db.pend.mu.Lock()
	if db.pend.frz != nil || db.pend.act.empty() || !db.jnl.canTurn() {
		db.pend.mu.Unlock()
		return
	}
	db.pend.frz = db.pend.act
	db.pend.act = db.pend.frz.next()
	db.pend.mu.Unlock()
	db.jnl.turn()
	select {
	case db.migrations <- struct{}{}:
	default:
	}
}

// migrator migrates the frozen set each time it is woken, until the
// channel is closed. A failed migration is recorded in the write health
// and tried again at the next wake.
func (db *DB) migrator() {
	defer db.migratorDone.Done()
	for range db.migrations {
		db.migrateFrozen()
	}
}

func (db *DB) migrateFrozen() {
	db.mmu.Lock()
	defer db.mmu.Unlock()
	db.pend.mu.RLock()
	s := db.pend.frz
	db.pend.mu.RUnlock()
	if s == nil {
		return
	}
	err := db.bolt.Update(func(tx *bbolt.Tx) error { return db.migrateSet(tx, s) })
	if err != nil {
		// Only a failure is recorded: a housekeeping commit that fits in
		// the file's free pages is no sign that the writes of clients
		// work again (DB.Probe is).
		db.health.record(err)
		return
	}
	db.pend.mu.Lock()
	db.pend.frz = nil
	db.pend.mu.Unlock()
	db.jnl.migrations.Add(1)
}

// migrateIdle has the active set migrated when the committer is idle.
func (db *DB) migrateIdle() {
	db.wmu.Lock()
	defer db.wmu.Unlock()
	db.pend.mu.RLock()
	migrating := db.pend.frz != nil
	db.pend.mu.RUnlock()
	if migrating {
		// A migration in progress, or one that failed: try it again.
		select {
		case db.migrations <- struct{}{}:
		default:
		}
		return
	}
	db.freeze()
}

// migrateNow migrates whatever is pending, waiting for a migration in
// progress.
func (db *DB) migrateNow() error {
	db.wmu.Lock()
	defer db.wmu.Unlock()
	return db.boltUpdate(func(*bbolt.Tx) error { return nil })
}

// recoverJournal opens the journal files of the database at path and
// migrates what they hold after the last migration, before the database is
// used.
func (db *DB) recoverJournal(path string, noSync bool) error {
	j, err := openJournal(path, noSync)
	if err != nil {
		return err
	}
	var from uint64
	err = db.bolt.View(func(tx *bbolt.Tx) error {
		from = be64(tx.Bucket(bMeta).Get(kJournalLSN))
		db.seq = tx.Bucket(bQueue).Bucket(bData).Sequence()
		return nil
	})
	if err != nil {
		j.close()
		return err
	}
	// The file whose first frame carries the next LSN, then the other.
	s := newPendSet(from)
	lsn, read := from, [2]bool{}
	for range 2 {
		for i, f := range j.files {
			if read[i] {
				continue
			}
			last, err := readJournal(f, lsn, s)
			if err != nil {
				j.close()
				return err
			}
			if last > lsn {
				read[i], lsn = true, last
				break
			}
		}
	}
	j.lsn = lsn
	db.jnl = j
	db.pend.act = s
	if s.empty() {
		return nil
	}
	db.wmu.Lock()
	defer db.wmu.Unlock()
	return db.boltUpdate(func(*bbolt.Tx) error { return nil })
}

// startMigrator starts the migrator goroutine.
func (db *DB) startMigrator() {
	db.migrations = make(chan struct{}, 1)
	db.migratorDone.Add(1)
	go db.migrator()
}

// closeJournal stops the migrator, migrates what is pending, so that a
// database closed cleanly leaves nothing to recover, and closes the
// journal files.
func (db *DB) closeJournal() error {
	if db.jnl == nil {
		return nil
	}
	db.wmu.Lock()
	defer db.wmu.Unlock()
	if db.jnl.closed {
		return nil
	}
	db.jnl.closed = true
	close(db.migrations)
	db.migratorDone.Wait()
	var err error
	if !db.pendingEmpty() {
		err = db.boltUpdate(func(*bbolt.Tx) error { return nil })
	}
	if cerr := db.jnl.close(); err == nil {
		err = cerr
	}
	return err
}
