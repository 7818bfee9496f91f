package notice

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/event"
	"github.com/keygate/keygate/ratelimit"
)

// LimitsConfig configures [Limits]. Facts is required; the zero value
// of every other field selects the default it names.
type LimitsConfig struct {
	// Facts records each crossing once: the key store.
	Facts event.Facts
	// Thresholds are the percentages of a window or balance spent that
	// are told, each once per window. Default 80 and 100.
	Thresholds []int
	// Queue bounds the crossings waiting to be recorded; past it they are
	// dropped, and counted ([Limits.Dropped]), so that a slow store never
	// holds a request. Default 1,024.
	Queue int
	// Clock returns the current time. Default [time.Now].
	Clock func() time.Time
	// Logger receives the store's failures. Default [slog.Default].
	Logger *slog.Logger
}

// Limits records the limits requests come near, as events:
// [event.LimitThreshold] when the binding window of the account or of
// the key is 80% and 100% spent, [event.CreditsLow] at 80% of the credit
// balance and [event.CreditsExhausted] when it is spent. The middleware
// hands it the decisions already in hand that are past the first
// threshold ([Limits.Near], [Limits.Offer]), without waiting; [Limits.Run]
// records them through the store's [event.Facts], once per subject,
// window and threshold however many instances see them.
type Limits struct {
	cfg     LimitsConfig
	first   int
	queue   chan Crossing
	dropped atomic.Int64
	// seen holds the facts this instance recorded or found recorded, so
	// that the requests of a spent window ask the store once.
	seen map[string]struct{}
}

// Crossing is a decision that left a window or the balance past the
// first threshold.
type Crossing struct {
	Account, KeyID, Lineage string
	// Policy and Index name the binding window; Key says it is the key's
	// own (its Lineage's), not the account's. A nil Policy is the credit
	// balance, Credits.
	Policy  *ratelimit.Policy
	Index   int
	Key     bool
	Credits *ratelimit.Credits
	// Limit, Remaining and Reset are the decision's; Denied that it
	// refused.
	Limit, Remaining int64
	Reset            time.Time
	Denied           bool
	// rotated marks a use of a replaced key in its grace period (see
	// [Limits.RotatedKeyUsed]) instead.
	rotated bool
}

// maxSeen bounds the facts remembered; past it they are forgotten, and
// the store is asked again.
const maxSeen = 10_000

// NewLimits returns a Limits. It fails without Facts, and for a
// threshold outside 1 to 100.
func NewLimits(cfg LimitsConfig) (*Limits, error) {
	if cfg.Facts == nil {
		return nil, errors.New("notice: LimitsConfig.Facts is required")
	}
	if len(cfg.Thresholds) == 0 {
		cfg.Thresholds = []int{80, 100}
	}
	cfg.Thresholds = slices.Clone(cfg.Thresholds)
	slices.Sort(cfg.Thresholds)
	if cfg.Thresholds[0] < 1 || cfg.Thresholds[len(cfg.Thresholds)-1] > 100 {
		return nil, fmt.Errorf("notice: thresholds %v are not all between 1 and 100", cfg.Thresholds)
	}
	if cfg.Queue <= 0 {
		cfg.Queue = 1024
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Limits{cfg: cfg, first: cfg.Thresholds[0], queue: make(chan Crossing, cfg.Queue), seen: map[string]struct{}{}}, nil
}

// Near reports whether a decision that leaves remaining of limit (or
// refused, denied) is past the first threshold: the request path's only
// work when it is not.
func (l *Limits) Near(limit, remaining int64, denied bool) bool {
	return denied || limit > 0 && (limit-remaining)*100 >= int64(l.first)*limit
}

// Offer queues c, or drops it when the queue is full.
func (l *Limits) Offer(c Crossing) {
	select {
	case l.queue <- c:
	default:
		l.dropped.Add(1)
	}
}

// RotatedKeyUsed queues a key.rotation.old_key_used event for p's key,
// which a rotation replaced: for apikey.Config.OnRotatedKeyUsed.
func (l *Limits) RotatedKeyUsed(p apikey.Principal) {
	l.Offer(Crossing{Account: p.Owner(), KeyID: p.KeyID(), Lineage: p.Lineage(), rotated: true})
}

// Dropped returns how many crossings a full queue dropped.
func (l *Limits) Dropped() int64 { return l.dropped.Load() }

// Run records the queued crossings until ctx ends.
func (l *Limits) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case c := <-l.queue:
			if err := l.record(ctx, &c); err != nil && ctx.Err() == nil {
				l.cfg.Logger.Error("notice: recording a limit crossing", "error", err)
			}
		}
	}
}

// record records the thresholds c crossed.
func (l *Limits) record(ctx context.Context, c *Crossing) error {
	if c.rotated {
		now := l.cfg.Clock()
		fact := string(event.RotatedKeyUsed) + "/" + c.KeyID + "/" + strconv.FormatInt(now.Unix()/3600, 10)
		return l.once(ctx, fact, &event.Event{Type: event.RotatedKeyUsed, KeyID: c.KeyID, Account: c.Account, At: now})
	}
	spent := 100
	if !c.Denied && c.Limit > 0 {
		spent = int((c.Limit - max(c.Remaining, 0)) * 100 / c.Limit)
	}
	subject, window, windowName, typ := "account", "", "", event.LimitThreshold
	switch {
	case c.Policy == nil:
		subject, typ = "credits", event.CreditsLow
		window = "grant" + strconv.FormatInt(c.Credits.Granted.Unix(), 10)
		if c.Credits.Refill > 0 {
			window += "-" + strconv.FormatInt(c.Reset.Unix(), 10) // until the next refill
		}
	default:
		w := c.Policy.Windows()[c.Index]
		// A window's cycle: a fixed window's end; for a bucket, which
		// refills all the time, the period of the crossing, so that a key
		// held at its limit hears of it once a period at most.
		cycle := c.Reset.Unix()
		if !w.Fixed {
			cycle = l.cfg.Clock().UnixNano() / int64(w.Period)
		}
		windowName = w.Name
		window = c.Policy.Name() + "/" + w.Name + "/" + strconv.FormatInt(cycle, 10)
		if c.Key {
			subject = "key"
		}
	}
	owner := c.Account
	if subject == "key" {
		owner = c.Lineage
	}
	for _, t := range l.cfg.Thresholds {
		if spent < t {
			break
		}
		kind := typ
		if typ == event.CreditsLow && t == 100 {
			kind = event.CreditsExhausted
		}
		fact := string(kind) + "/" + subject + "/" + owner + "/" + window + "/" + strconv.Itoa(t)
		if _, ok := l.seen[fact]; ok {
			continue // a window held at its limit offers every request: build nothing for them
		}
		ev := &event.Event{Type: kind, KeyID: c.KeyID, Account: c.Account, At: l.cfg.Clock(), Data: map[string]string{
			"subject": subject, "threshold": strconv.Itoa(t),
			"limit": strconv.FormatInt(c.Limit, 10), "remaining": strconv.FormatInt(max(c.Remaining, 0), 10),
			"reset": c.Reset.UTC().Format(time.RFC3339),
		}}
		if windowName != "" {
			ev.Data["window"] = windowName
		}
		if err := l.once(ctx, fact, ev); err != nil {
			return err
		}
	}
	return nil
}

// once records fact's event unless this instance did, or saw it done.
func (l *Limits) once(ctx context.Context, fact string, ev *event.Event) error {
	if _, ok := l.seen[fact]; ok {
		return nil
	}
	if _, err := l.cfg.Facts.Once(ctx, fact, ev); err != nil {
		return err
	}
	if len(l.seen) >= maxSeen {
		clear(l.seen)
	}
	l.seen[fact] = struct{}{}
	return nil
}
