package daemon

import (
	"time"

	"github.com/agentd/agentd/protocols/aipevents"
	"github.com/agentd/agentd/protocols/connections"
)

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

// AIPConnections returns the daemon's connections service (nil when
// aip.enabled is off).
func AIPConnections(d *Daemon) *connections.Service {
	if d.aip == nil {
		return nil
	}
	return d.aip.conns
}

// AIPBroker returns the daemon's event broker.
func AIPBroker(d *Daemon) *aipevents.Broker {
	if d.aip == nil {
		return nil
	}
	return d.aip.broker
}
