// Package notice records the facts about keys that are not changes, as
// events of their audit trail (and outbox), each once however many
// instances notice it and however often they restart: every fact is
// claimed in the store with its event ([event.Facts]).
//
// A [Notifier] reads the store's expiring keys every Interval and records
// [event.KeyExpiring] when a key comes within a threshold of its expiry
// (7 days and 1 day by default; a key that comes within several between
// two reads, created 12 hours before its expiry say, gets the nearest
// only) and [event.KeyExpired] once it has expired.
//
// [Limits] hears from the request path, without holding it: the
// decisions that leave a window or a credit balance nearly spent
// (middleware.Config.Notices), for [event.LimitThreshold],
// [event.CreditsLow] and [event.CreditsExhausted], and the uses of keys
// that a rotation replaced (apikey.Config.OnRotatedKeyUsed), for
// [event.RotatedKeyUsed].
package notice

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/event"
)

// Store is what a Notifier needs of a key store: its expiring keys, and
// facts recorded once.
type Store interface {
	Expiring(ctx context.Context, from, to time.Time) ([]*apikey.Record, error)
	event.Facts
}

// Config configures a [Notifier]. Store is required; the zero value of
// every other field selects the default it names.
type Config struct {
	Store Store
	// Thresholds are how long before its expiry a key's holder hears of
	// it, each once. Default 7 days and 1 day.
	Thresholds []time.Duration
	// Lookback is how long after an expiry a Notifier that was not
	// running still records it. Default 24 hours.
	Lookback time.Duration
	// Interval is how often the store is read. Default 1 minute.
	Interval time.Duration
	// Clock returns the current time. Default [time.Now].
	Clock func() time.Time
	// Logger receives the store's failures. Default [slog.Default].
	Logger *slog.Logger
}

// Notifier records expiry notices. Create one with [New].
type Notifier struct {
	cfg Config
}

// New returns a Notifier. It fails without a Store, and for a threshold
// that is not positive.
func New(cfg Config) (*Notifier, error) {
	if cfg.Store == nil {
		return nil, errors.New("notice: Config.Store is required")
	}
	if len(cfg.Thresholds) == 0 {
		cfg.Thresholds = []time.Duration{7 * 24 * time.Hour, 24 * time.Hour}
	}
	cfg.Thresholds = slices.Clone(cfg.Thresholds)
	slices.Sort(cfg.Thresholds) // the nearest first
	if cfg.Thresholds[0] <= 0 {
		return nil, fmt.Errorf("notice: threshold %v is not positive", cfg.Thresholds[0])
	}
	if cfg.Lookback <= 0 {
		cfg.Lookback = 24 * time.Hour
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Minute
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Notifier{cfg: cfg}, nil
}

// Run records notices every Interval until ctx ends.
func (n *Notifier) Run(ctx context.Context) {
	t := time.NewTicker(n.cfg.Interval)
	defer t.Stop()
	for {
		if _, err := n.Once(ctx); err != nil && ctx.Err() == nil {
			n.cfg.Logger.Error("notice: recording expiry notices", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Once reads the store once and records the notices due; it returns how
// many it recorded (those another instance recorded first are not
// counted).
func (n *Notifier) Once(ctx context.Context) (int, error) {
	now := n.cfg.Clock()
	far := n.cfg.Thresholds[len(n.cfg.Thresholds)-1]
	recs, err := n.cfg.Store.Expiring(ctx, now.Add(-n.cfg.Lookback), now.Add(far))
	if err != nil {
		return 0, err
	}
	wrote := 0
	for _, rec := range recs {
		k := &rec.Key
		ev := &event.Event{KeyID: k.ID, Account: k.Owner, At: now, Data: map[string]string{"expires_at": k.ExpiresAt.UTC().Format(time.RFC3339)}}
		fact := string(event.KeyExpired) + "/" + k.ID + "/" + strconv.FormatInt(k.ExpiresAt.UnixMicro(), 10)
		if left := k.ExpiresAt.Sub(now); left > 0 {
			i, _ := slices.BinarySearch(n.cfg.Thresholds, left) // the nearest threshold it is within
			if i == len(n.cfg.Thresholds) {
				continue
			}
			threshold := label(n.cfg.Thresholds[i])
			ev.Type, ev.Data["threshold"] = event.KeyExpiring, threshold
			fact = string(event.KeyExpiring) + "/" + k.ID + "/" + threshold + "/" + strconv.FormatInt(k.ExpiresAt.UnixMicro(), 10)
		} else {
			ev.Type = event.KeyExpired
		}
		ok, err := n.cfg.Store.Once(ctx, fact, ev)
		if err != nil {
			return wrote, err
		}
		if ok {
			wrote++
		}
	}
	return wrote, nil
}

// label writes a threshold as whole days ("7d") when it is, otherwise as
// a Go duration.
func label(d time.Duration) string {
	if day := 24 * time.Hour; d%day == 0 {
		return strconv.FormatInt(int64(d/day), 10) + "d"
	}
	return d.String()
}
