package manage

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"time"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/ratelimit"
)

// setter applies one PATCH field to a key's fields.
type setter func(*apikey.UpdateParams)

// fieldParser parses one PATCH field's JSON into its setter.
type fieldParser func(raw json.RawMessage) (setter, error)

// patchFields are the fields PATCH accepts; null clears a field.
var patchFields = map[string]fieldParser{
	"name":              field(func(p *apikey.UpdateParams, v string) { p.Name = v }),
	"description":       field(func(p *apikey.UpdateParams, v string) { p.Description = v }),
	"project_id":        field(func(p *apikey.UpdateParams, v string) { p.ProjectID = v }),
	"plan":              field(func(p *apikey.UpdateParams, v string) { p.Plan = v }),
	"metadata":          field(func(p *apikey.UpdateParams, v map[string]string) { p.Metadata = v }),
	"permissions":       field(func(p *apikey.UpdateParams, v []apikey.Permission) { p.Permissions = v }),
	"allowed_referrers": field(func(p *apikey.UpdateParams, v []string) { p.Restrictions.AllowedReferrers = v }),
	"allowed_endpoints": field(func(p *apikey.UpdateParams, v []string) { p.Restrictions.AllowedEndpoints = v }),
	"allowed_ips": converted(parseNetworks,
		func(p *apikey.UpdateParams, v []netip.Prefix) { p.Restrictions.AllowedIPs = v }),
	"limits": converted(decodeLimits, func(p *apikey.UpdateParams, v []ratelimit.Window) { p.Limits = v }),
	"expires_at": converted(func(s string) (time.Time, error) { return parseTime("expires_at", s) },
		func(p *apikey.UpdateParams, v time.Time) { p.ExpiresAt = v }),
	"not_before": converted(func(s string) (time.Time, error) { return parseTime("not_before", s) },
		func(p *apikey.UpdateParams, v time.Time) { p.NotBefore = v }),
}

// field parses a field's JSON as a T that set applies.
func field[T any](set func(*apikey.UpdateParams, T)) fieldParser {
	return converted(func(v T) (T, error) { return v, nil }, set)
}

// converted parses a field's JSON as a T, which conv turns into the U
// that set applies.
func converted[T, U any](conv func(T) (U, error), set func(*apikey.UpdateParams, U)) fieldParser {
	return func(raw json.RawMessage) (setter, error) {
		var v T
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		u, err := conv(v)
		return func(p *apikey.UpdateParams) { set(p, u) }, err
	}
}

func (h *Handler) update(w http.ResponseWriter, r *http.Request) {
	var body map[string]json.RawMessage
	if err := decode(r, &body); err != nil {
		h.fail(w, r, http.StatusBadRequest, "invalid_input", err.Error())
		return
	}
	var sets []setter
	for name, raw := range body {
		parse, ok := patchFields[name]
		if !ok {
			msg := fmt.Sprintf("Unknown field %q", name)
			if slices.Contains([]string{"environment", "id", "owner", "api_key", "key_prefix", "created_at"}, name) {
				msg = fmt.Sprintf("%s cannot change; create a new key instead", name)
			}
			h.fail(w, r, http.StatusBadRequest, "invalid_input", msg)
			return
		}
		set, err := parse(raw)
		if err != nil {
			if ie := (*apikey.InputError)(nil); !errors.As(err, &ie) {
				err = &apikey.InputError{Field: name, Reason: "has the wrong JSON type"}
			}
			h.lifecycleError(w, r, err)
			return
		}
		sets = append(sets, set)
	}
	h.writeKey(w, r)(h.cfg.Service.Update(r.Context(), accountFrom(r), r.PathValue("id"), func(p *apikey.UpdateParams) {
		for _, set := range sets {
			set(p)
		}
	}))
}
