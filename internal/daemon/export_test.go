package daemon

import "time"

// SetUsersClock makes the user accounts of the daemons built afterwards
// read their time from now; the returned function restores the clock.
func SetUsersClock(now func() time.Time) (restore func()) {
	old := usersNow
	usersNow = now
	return func() { usersNow = old }
}

// SetPrivadoClock makes the proof-request service of the daemons built
// afterwards read its time from now; the returned function restores it.
func SetPrivadoClock(now func() time.Time) (restore func()) {
	old := privadoNow
	privadoNow = now
	return func() { privadoNow = old }
}
