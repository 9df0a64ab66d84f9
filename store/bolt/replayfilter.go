package bolt

import (
	"cmp"
	"hash/maphash"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"
)

// replayFilter tells, for most replay keys not recorded, that they are not,
// without a search of the replay ids (a B+tree in the order of random keys,
// whose search was 2–3 % of the CPU of a forward) or of the runs
// (replayruns.go). It holds the keys' digests (digestOf), in a Bloom filter
// per day of expiry:
//
//   - a key is added with its expiry before the transaction that records it
//     commits (replayPutOver), so whoever can see the record finds the key
//     in the filter; a transaction that fails leaves a key that only costs a
//     search;
//   - keys are never removed one by one: a day's filter is left out of every
//     lookup once each of its keys has expired (an expired record counts as
//     not recorded, Sweep or not), and dropped later;
//   - a day's filter is a list of segments, each larger than the last, and
//     its first segment is sized from the day before, so a steady rate gives
//     one or two per day.
//
// Adds run under mmu (every bbolt write holds it); lookups run beside them.
type replayFilter struct {
	seed maphash.Seed
	mu   sync.RWMutex // guards days and each day's segs
	days []*dayFilter // by day
}

// dayFilter holds the keys whose expiry is in one day (unix day number;
// farDay for expiries too far ahead to have a day of their own).
type dayFilter struct {
	day  int64
	segs []*bloomSeg // oldest first; the last takes the adds
}

// bloomSeg is a blocked Bloom filter: a key sets bloomK bits of one 512-bit
// block (one cache line). At 16 bits a key it answers a key it lacks as
// present about 0.2 % of the time.
type bloomSeg struct {
	words []atomic.Uint64
	nblk  uint64
	cap   int
	n     atomic.Int64
}

const (
	bloomK       = 6
	bloomBitsKey = 16
	bloomMinKeys = 1 << 14
	bloomGrowth  = 4
	farDay       = math.MaxInt64
	dayNanos     = int64(24 * time.Hour)
	farAheadDays = 31 // expiries past this many days from now share farDay
	keepPastDays = 1  // expired days kept before they are dropped
)

func newBloomSeg(keys int) *bloomSeg {
	keys = max(keys, bloomMinKeys)
	nblk := (keys*bloomBitsKey + 511) / 512
	return &bloomSeg{words: make([]atomic.Uint64, nblk*8), nblk: uint64(nblk), cap: keys}
}

func (s *bloomSeg) block(h uint64) []atomic.Uint64 {
	i := (h >> 32) * s.nblk >> 32
	return s.words[i*8 : i*8+8]
}

func (s *bloomSeg) add(h uint64) {
	blk := s.block(h)
	a, b := uint32(h), uint32(h>>17)|1
	for range bloomK {
		bit := a & 511
		blk[bit>>6].Or(1 << (bit & 63))
		a += b
	}
	s.n.Add(1)
}

func (s *bloomSeg) has(h uint64) bool {
	blk := s.block(h)
	a, b := uint32(h), uint32(h>>17)|1
	for range bloomK {
		bit := a & 511
		if blk[bit>>6].Load()&(1<<(bit&63)) == 0 {
			return false
		}
		a += b
	}
	return true
}

func newReplayFilter() *replayFilter {
	return &replayFilter{seed: maphash.MakeSeed()}
}

// expiryDay is the day of expiry exp (timeBits), farDay for one more than
// farAheadDays after now.
func expiryDay(expBits uint64, now time.Time) int64 {
	if int64(expBits^(1<<63)) >= now.UnixNano()+farAheadDays*dayNanos {
		return farDay
	}
	return expDay(expBits)
}

// expDay is the unix day of time t (timeBits).
func expDay(t uint64) int64 { return floorDiv(int64(t^(1<<63)), dayNanos) }

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// add records key (a digest), which expires at expBits (timeBits). The caller holds mmu.
func (f *replayFilter) add(key []byte, expBits uint64, now time.Time) {
	h := maphash.Bytes(f.seed, key)
	day := expiryDay(expBits, now)
	f.mu.RLock()
	d := f.dayOf(day)
	var seg *bloomSeg
	if d != nil {
		seg = d.segs[len(d.segs)-1]
	}
	f.mu.RUnlock()
	if seg == nil || seg.n.Load() >= int64(seg.cap) {
		seg = f.grow(day, now)
	}
	seg.add(h)
}

// dayOf returns the filter of day, or nil. The caller holds mu.
func (f *replayFilter) dayOf(day int64) *dayFilter {
	i, ok := slices.BinarySearchFunc(f.days, day, func(d *dayFilter, day int64) int { return cmp.Compare(d.day, day) })
	if !ok {
		return nil
	}
	return f.days[i]
}

// grow gives day a segment with room (a new day, or a full last segment)
// and drops the days long expired. Adds are serialised (mmu), so no other
// add grows the filter meanwhile.
func (f *replayFilter) grow(day int64, now time.Time) *bloomSeg {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := f.dayOf(day)
	if d == nil {
		size := bloomMinKeys
		for _, o := range f.days { // size it as the busiest day held
			if o.day != farDay {
				size = max(size, o.keys())
			}
		}
		d = &dayFilter{day: day, segs: []*bloomSeg{newBloomSeg(size)}}
		f.days = append(f.days, d)
		slices.SortFunc(f.days, func(a, b *dayFilter) int { return cmp.Compare(a.day, b.day) })
		today := floorDiv(now.UnixNano(), dayNanos)
		f.days = slices.DeleteFunc(f.days, func(o *dayFilter) bool { return o.day < today-keepPastDays })
		return d.segs[0]
	}
	last := d.segs[len(d.segs)-1]
	if last.n.Load() < int64(last.cap) {
		return last
	}
	next := newBloomSeg(last.cap * bloomGrowth)
	d.segs = append(d.segs, next)
	return next
}

func (d *dayFilter) keys() int {
	n := 0
	for _, s := range d.segs {
		n += int(s.n.Load())
	}
	return n
}

// mayHold reports whether key (a digest) may be recorded with an expiry not before
// nowBits (timeBits); false is certain.
func (f *replayFilter) mayHold(key []byte, nowBits uint64) bool {
	h := maphash.Bytes(f.seed, key)
	today := expDay(nowBits)
	f.mu.RLock()
	defer f.mu.RUnlock()
	for _, d := range f.days {
		if d.day < today { // every key of it has expired
			continue
		}
		for _, s := range d.segs {
			if s.has(h) {
				return true
			}
		}
	}
	return false
}

// load adds every replay record not expired at now, before the filter is
// used (Open): the ids' digests, then the runs'.
func (f *replayFilter) load(tx *bbolt.Tx, now time.Time) {
	c := tx.Bucket(bReplay).Bucket(bExp).Cursor()
	for k, _ := c.Seek(putBE64(timeBits(now))); k != nil; k, _ = c.Next() {
		d := digestOf(k[8:])
		f.add(d[:], be64(k), now)
	}
	loadRuns(tx, f, now)
}
