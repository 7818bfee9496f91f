package apikey

import (
	"bytes"
	"context"
	"encoding/json"
	"time"

	"github.com/keygate/keygate/apikey/event"
)

// Actor is who makes a lifecycle change, for its [event.Event].
type Actor struct {
	// ID names the person or system, as the host's authentication knows
	// them.
	ID string
	// IP is the client's address.
	IP string
}

type actorKey struct{}

// WithActor returns a context under which the [Service]'s changes are
// recorded as made by a.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// newEvent returns the event of a change of a key from before to after (a
// zero Key for none) made under ctx at now.
func newEvent(ctx context.Context, typ event.Type, before, after *Key, now time.Time) *event.Event {
	k := after
	if k.ID == "" {
		k = before
	}
	a, _ := ctx.Value(actorKey{}).(Actor)
	return &event.Event{
		Type: typ, KeyID: k.ID, Account: k.Owner, Actor: a.ID, IP: a.IP, At: now,
		Changes: diff(before, after),
	}
}

// diff returns the fields of Key's JSON form that differ between before
// and after, but the ID and owner, which the event names anyway.
func diff(before, after *Key) map[string]event.Change {
	o, n := fields(before), fields(after)
	out := map[string]event.Change{}
	for name := range o {
		if _, ok := n[name]; !ok {
			n[name] = nil
		}
	}
	for name, nv := range n {
		if name == "id" || name == "owner" || bytes.Equal(o[name], nv) {
			continue
		}
		out[name] = event.Change{Old: o[name], New: nv}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// fields returns k's JSON form by field, with empty values left out.
func fields(k *Key) map[string]json.RawMessage {
	m := map[string]json.RawMessage{}
	if k.ID == "" {
		return m
	}
	data, err := json.Marshal(k)
	if err != nil {
		return m // a Key always marshals
	}
	_ = json.Unmarshal(data, &m)
	for name, v := range m {
		switch string(v) {
		case `""`, `[]`, `{}`, `null`, `0`:
			delete(m, name)
		}
	}
	return m
}
