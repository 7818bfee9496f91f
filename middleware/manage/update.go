package manage

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/keygate/keygate/apikey"
)

// setter applies one PATCH field to a key's fields.
type setter func(*apikey.UpdateParams)

// patchFields parse the fields PATCH accepts, each into the setter that
// applies it; null clears a field.
var patchFields = map[string]func(raw json.RawMessage) (setter, error){
	"name": func(raw json.RawMessage) (setter, error) {
		v, err := parse[string](raw)
		return func(p *apikey.UpdateParams) { p.Name = v }, err
	},
	"description": func(raw json.RawMessage) (setter, error) {
		v, err := parse[string](raw)
		return func(p *apikey.UpdateParams) { p.Description = v }, err
	},
	"project_id": func(raw json.RawMessage) (setter, error) {
		v, err := parse[string](raw)
		return func(p *apikey.UpdateParams) { p.ProjectID = v }, err
	},
	"plan": func(raw json.RawMessage) (setter, error) {
		v, err := parse[string](raw)
		return func(p *apikey.UpdateParams) { p.Plan = v }, err
	},
	"metadata": func(raw json.RawMessage) (setter, error) {
		v, err := parse[map[string]string](raw)
		return func(p *apikey.UpdateParams) { p.Metadata = v }, err
	},
	"permissions": func(raw json.RawMessage) (setter, error) {
		v, err := parse[[]apikey.Permission](raw)
		return func(p *apikey.UpdateParams) { p.Permissions = v }, err
	},
	"allowed_referrers": func(raw json.RawMessage) (setter, error) {
		v, err := parse[[]string](raw)
		return func(p *apikey.UpdateParams) { p.Restrictions.AllowedReferrers = v }, err
	},
	"allowed_endpoints": func(raw json.RawMessage) (setter, error) {
		v, err := parse[[]string](raw)
		return func(p *apikey.UpdateParams) { p.Restrictions.AllowedEndpoints = v }, err
	},
	"allowed_ips": func(raw json.RawMessage) (setter, error) {
		v, err := parse[[]string](raw)
		if err != nil {
			return nil, err
		}
		ips, err := parseNetworks(v)
		return func(p *apikey.UpdateParams) { p.Restrictions.AllowedIPs = ips }, err
	},
	"limits": func(raw json.RawMessage) (setter, error) {
		v, err := parse[[]limitJSON](raw)
		if err != nil {
			return nil, err
		}
		limits, err := decodeLimits(v)
		return func(p *apikey.UpdateParams) { p.Limits = limits }, err
	},
	"expires_at": func(raw json.RawMessage) (setter, error) {
		t, err := parseTimeJSON("expires_at", raw)
		return func(p *apikey.UpdateParams) { p.ExpiresAt = t }, err
	},
	"not_before": func(raw json.RawMessage) (setter, error) {
		t, err := parseTimeJSON("not_before", raw)
		return func(p *apikey.UpdateParams) { p.NotBefore = t }, err
	},
}

// parse decodes raw strictly; null is the zero value.
func parse[T any](raw json.RawMessage) (T, error) {
	var v T
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	err := dec.Decode(&v)
	return v, err
}

func parseTimeJSON(field string, raw json.RawMessage) (time.Time, error) {
	s, err := parse[string](raw)
	if err != nil {
		return time.Time{}, err
	}
	return parseTime(field, s)
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
