package manage

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/internal/terms"
	"github.com/keygate/keygate/middleware"
	"github.com/keygate/keygate/ratelimit"
)

// accountJSON is an account as the account endpoint shows it.
type accountJSON struct {
	ID      string             `json:"id"`
	Plan    string             `json:"plan"`
	Custom  bool               `json:"custom_limits"`
	Limits  []limitJSON        `json:"limits"`
	Credits *ratelimit.Credits `json:"credits"`
}

// limitJSON is one window: its remaining and reset when a limiter can
// tell.
type limitJSON struct {
	Limit         int64      `json:"limit"`
	PeriodSeconds int64      `json:"period_seconds"`
	Monthly       bool       `json:"monthly,omitempty"`
	Remaining     *int64     `json:"remaining,omitempty"`
	Reset         *time.Time `json:"reset,omitempty"`
}

// getAccount answers GET {account}.
func (h *Handler) getAccount(w http.ResponseWriter, r *http.Request) {
	a, err := h.cfg.Service.Account(r.Context(), accountFrom(r))
	if err != nil {
		h.lifecycleError(w, r, err)
		return
	}
	h.writeAccount(w, r, a)
}

// writeAccount writes a, with where its limits and balance stand.
func (h *Handler) writeAccount(w http.ResponseWriter, r *http.Request, a apikey.Account) {
	policy, err := terms.Account(h.cfg.Service.Plans(), &a)
	if err != nil {
		h.lifecycleError(w, r, err)
		return
	}
	out := accountJSON{ID: a.ID, Plan: a.Plan, Custom: len(a.Limits) > 0, Limits: []limitJSON{}}
	for _, win := range policy.Windows() {
		out.Limits = append(out.Limits, limitJSON{Limit: win.Limit, PeriodSeconds: int64(win.Period / time.Second), Monthly: win.Monthly})
	}
	if c := a.Credits; c != nil {
		// What stands now: the balance left and the next refill.
		now := *c
		out.Credits = &now
	}
	if h.cfg.Limiter != nil {
		d, err := h.cfg.Limiter.Allow(r.Context(), ratelimit.Request{Account: a.ID, AccountPolicy: policy, Credits: a.Credits})
		if err != nil {
			h.lifecycleError(w, r, err)
			return
		}
		for i, s := range d.Windows {
			out.Limits[i].Remaining, out.Limits[i].Reset = &s.Remaining, &s.Reset
		}
		if out.Credits != nil {
			out.Credits.Balance = d.Balance
		}
	}
	if c := a.Credits; c != nil && c.Refill != 0 {
		out.Credits.RefillAt = c.NextRefill(h.cfg.Clock())
	}
	writeJSON(w, http.StatusOK, out)
}

// putAccountRequest changes an account: each field present replaces the
// account's; "limits": [] drops custom limits and "credits": null the
// credits.
type putAccountRequest struct {
	Plan    *string         `json:"plan"`
	Limits  *[]limitJSON    `json:"limits"`
	Credits json.RawMessage `json:"credits"`
}

// putAccount answers PUT {account}, creating the account when it does
// not exist: the host's login vouches for it.
func (h *Handler) putAccount(w http.ResponseWriter, r *http.Request) {
	if !h.cfg.AccountUpdates {
		w.Header().Set("Allow", "GET")
		h.fail(w, r, http.StatusMethodNotAllowed, middleware.CodeMethodNotAllowed, "Method not allowed")
		return
	}
	var req putAccountRequest
	if err := decode(r, &req); err != nil {
		h.fail(w, r, http.StatusBadRequest, "invalid_input", err.Error())
		return
	}
	var change accountChange
	var err error
	if req.Limits != nil {
		if change.limits, err = decodeLimits(*req.Limits); err != nil {
			h.lifecycleError(w, r, err)
			return
		}
	}
	if req.Credits != nil {
		if change.credits, err = decodeCredits(req.Credits); err != nil {
			h.fail(w, r, http.StatusBadRequest, "invalid_input", "Invalid credits: "+err.Error())
			return
		}
	}
	// Read, change and write as one compare-and-set, so that a change
	// made meanwhile on another instance is kept, never written over.
	a, err := h.cfg.Service.UpdateAccount(r.Context(), accountFrom(r), func(a *apikey.Account) error {
		if req.Plan != nil {
			a.Plan = *req.Plan
		}
		if req.Limits != nil {
			a.Limits = change.limits
		}
		if req.Credits != nil {
			a.Credits = change.credits
		}
		return nil
	})
	if err != nil {
		h.lifecycleError(w, r, err)
		return
	}
	h.writeAccount(w, r, a)
}

// accountChange is a PUT's decoded limits and credits.
type accountChange struct {
	limits  []ratelimit.Window
	credits *ratelimit.Credits
}

// decodeCredits reads the credits of a PUT, in their JSON form (a
// granted_at is the Service's to set): null for none.
func decodeCredits(raw json.RawMessage) (*ratelimit.Credits, error) {
	var c *ratelimit.Credits
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, errors.New(strings.TrimPrefix(err.Error(), ratelimit.ErrInvalidCredits.Error()+": "))
	}
	return c, nil
}

// maxPeriodSeconds is a year and a day: apikey refuses longer windows.
const maxPeriodSeconds = 366 * 24 * 60 * 60

// decodeLimits returns custom windows as a request states them.
func decodeLimits(in []limitJSON) ([]ratelimit.Window, error) {
	var out []ratelimit.Window
	for _, l := range in {
		if l.Remaining != nil || l.Reset != nil {
			return nil, &apikey.InputError{Field: "limits", Reason: "remaining and reset are read-only"}
		}
		// Bound the seconds before they become a Duration, which would
		// wrap past 292 years.
		if l.PeriodSeconds < 0 || l.PeriodSeconds > maxPeriodSeconds {
			return nil, &apikey.InputError{Field: "limits", Reason: fmt.Sprintf("period_seconds %d is not between 0 (a monthly window) and %d", l.PeriodSeconds, maxPeriodSeconds)}
		}
		out = append(out, ratelimit.Window{Limit: l.Limit, Period: time.Duration(l.PeriodSeconds) * time.Second, Monthly: l.Monthly})
	}
	return out, nil
}

// encodeLimits returns custom windows as the endpoints show them.
func encodeLimits(in []ratelimit.Window) []limitJSON {
	var out []limitJSON
	for _, l := range in {
		out = append(out, limitJSON{Limit: l.Limit, PeriodSeconds: int64(l.Period / time.Second), Monthly: l.Monthly})
	}
	return out
}
