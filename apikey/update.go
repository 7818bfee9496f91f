package apikey

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate/apikey/event"
	"github.com/keygate/keygate/ratelimit"
)

// UpdateParams are the fields of a key that [Service.Update] may change,
// as [CreateParams] describes them. The owner, ID, environment and hash
// of a key never change.
type UpdateParams struct {
	Name         string
	Description  string
	Permissions  []Permission
	ProjectID    string
	Plan         string
	Limits       []ratelimit.Window
	NotBefore    time.Time
	ExpiresAt    time.Time
	Restrictions Restrictions
	Metadata     map[string]string
}

// Update changes owner's key id in place: change receives the key's
// fields as stored and edits them; the result is validated as
// [Service.Create] validates its input, and a changed expiry must also
// be within [Config].MaxLifetime of the key's creation. It
// returns the updated key. The change is a compare-and-set: when another
// change of the key lands between the read and the write, Update fails
// with [ErrConflict] and changes nothing. Updating a revoked key fails
// with [ErrRevoked], an expired one with [ErrExpired] and a rotated one
// with [ErrRotated] (update its replacement). An update that changes
// nothing succeeds and records no event. Like a revocation, it reaches
// the caches of every instance that watch the store's changes.
func (s *Service) Update(ctx context.Context, owner, id string, change func(*UpdateParams)) (Key, error) {
	old, err := s.changeable(ctx, owner, id)
	if err != nil {
		return Key{}, err
	}
	k := old.Key.clone() // change may edit the slices and maps it gets
	p := UpdateParams{
		Name: k.Name, Description: k.Description, Permissions: k.Permissions, ProjectID: k.ProjectID,
		Plan: k.Plan, Limits: k.Limits, NotBefore: k.NotBefore, ExpiresAt: k.ExpiresAt,
		Restrictions: k.Restrictions, Metadata: k.Metadata,
	}
	change(&p)
	now := s.now()
	// The key is not expired (changeable), so an unchanged expiry is in
	// the future, as validate requires.
	v, err := s.validate(CreateParams{
		Owner: old.Owner, ID: old.ID, Environment: old.Environment,
		Name: p.Name, Description: p.Description, Permissions: p.Permissions, ProjectID: p.ProjectID,
		Plan: p.Plan, Limits: p.Limits, NotBefore: p.NotBefore, ExpiresAt: p.ExpiresAt,
		Restrictions: p.Restrictions, Metadata: p.Metadata,
	}, now)
	if err != nil {
		return Key{}, err
	}
	if !v.ExpiresAt.Equal(old.ExpiresAt) {
		if err := s.checkLifetime(&Key{CreatedAt: old.CreatedAt, ExpiresAt: v.ExpiresAt}); err != nil {
			return Key{}, err
		}
	}
	next := *old
	next.Name, next.Description, next.Permissions, next.ProjectID = v.Name, v.Description, v.Permissions, v.ProjectID
	next.Plan, next.Limits, next.NotBefore, next.ExpiresAt = v.Plan, v.Limits, v.NotBefore, v.ExpiresAt
	next.Restrictions, next.Metadata = v.Restrictions, v.Metadata
	return s.write(ctx, event.KeyUpdated, old, &next, now)
}

// checkLifetime refuses an expiry of k past [Config].MaxLifetime from its
// creation.
func (s *Service) checkLifetime(k *Key) error {
	if s.life > 0 && (k.ExpiresAt.IsZero() || k.ExpiresAt.After(k.CreatedAt.Add(s.life))) {
		return invalid("expires_at", "must be at most %s after the key's creation", s.life)
	}
	return nil
}

// changeable returns owner's key id if it may be updated, disabled or
// enabled.
func (s *Service) changeable(ctx context.Context, owner, id string) (*Record, error) {
	rec, err := s.owned(ctx, owner, id)
	if err != nil {
		return nil, err
	}
	switch rec.Status(s.now()) {
	case StatusRevoked:
		return nil, ErrRevoked
	case StatusExpired:
		return nil, ErrExpired
	case StatusRotated:
		return nil, ErrRotated
	}
	return rec, nil
}

// write stores next in place of old with the event typ, unless nothing
// changed, and returns next's key.
func (s *Service) write(ctx context.Context, typ event.Type, old, next *Record, now time.Time) (Key, error) {
	ev := newEvent(ctx, typ, &old.Key, &next.Key, now)
	if ev.Changes == nil {
		return old.Key.clone(), nil
	}
	if err := s.store.Update(ctx, old, next, ev); err != nil {
		switch {
		case errors.Is(err, ErrNotFound):
			return Key{}, ErrNotFound // deleted meanwhile
		case errors.Is(err, ErrConflict):
			return Key{}, ErrConflict
		}
		return Key{}, fmt.Errorf("apikey: update: %w", err)
	}
	return next.Key.clone(), nil
}

// Disable pauses owner's key id: until [Service.Enable], it fails
// verification as an unknown key does, and its status is
// [StatusDisabled]. It still counts toward the owner's limit. Disabling a
// disabled key succeeds and changes nothing; a revoked, expired or
// rotated key fails as [Service.Update] does.
func (s *Service) Disable(ctx context.Context, owner, id string) (Key, error) {
	return s.setDisabled(ctx, owner, id, true)
}

// Enable undoes [Service.Disable]. Enabling an enabled key succeeds and
// changes nothing.
func (s *Service) Enable(ctx context.Context, owner, id string) (Key, error) {
	return s.setDisabled(ctx, owner, id, false)
}

func (s *Service) setDisabled(ctx context.Context, owner, id string, disabled bool) (Key, error) {
	old, err := s.changeable(ctx, owner, id)
	if err != nil {
		return Key{}, err
	}
	now := s.now()
	next := *old
	typ := event.KeyEnabled
	next.DisabledAt = time.Time{}
	if disabled {
		typ = event.KeyDisabled
		if next.DisabledAt = old.DisabledAt; next.DisabledAt.IsZero() {
			next.DisabledAt = now
		}
	}
	return s.write(ctx, typ, old, &next, now)
}

// Purge deletes, for good, the records of every owner that were revoked
// or expired more than retention ago, with an [event.KeyPurged] event each,
// and returns how many it deleted. It is meant to be scheduled by the
// host (say daily); several instances may run it at once. Until a
// record is purged, its key's history (and [Service.ListPage]) still show
// it.
func (s *Service) Purge(ctx context.Context, retention time.Duration) (int, error) {
	if retention < 0 {
		return 0, invalid("retention", "must not be negative")
	}
	now := s.now()
	ev := newEvent(ctx, event.KeyPurged, &Key{}, &Key{}, now)
	total := 0
	for {
		n, err := s.store.Purge(ctx, now.Add(-retention), purgeBatch, ev)
		total += n
		if err != nil {
			return total, fmt.Errorf("apikey: purge: %w", err)
		}
		if n < purgeBatch {
			return total, nil
		}
	}
}

// purgeBatch is how many records one [Store].Purge call deletes, so that
// no call holds a store for long.
const purgeBatch = 100

// Page is one page of a listing, and the cursor of the next one.
type Page[T any] struct {
	Items []T
	// Next is the cursor of the next page; "" when this is the last.
	Next string
}

// maxPageSize is the most items one page holds; a larger limit asks for
// this many.
const maxPageSize = 100

// pageSize returns limit as a page size: 1 to 100, 0 being a page of
// 20.
func pageSize(limit int) (int, error) {
	switch {
	case limit < 0:
		return 0, invalid("limit", "must not be negative")
	case limit == 0:
		return 20, nil
	}
	return min(limit, maxPageSize), nil
}

// ListPage returns a page of owner's keys, in every state, oldest first:
// up to limit (0 is 20, at most 100) after the one cursor
// names ("" starts at the first). A cursor that [ListPage] did not
// return fails with an [*InputError] for "cursor".
func (s *Service) ListPage(ctx context.Context, owner, cursor string, limit int) (Page[Key], error) {
	n, err := pageSize(limit)
	if err != nil {
		return Page[Key]{}, err
	}
	after, id, err := decodeCursor(cursor)
	if err != nil {
		return Page[Key]{}, err
	}
	if err := checkAccountID(owner); err != nil {
		return Page[Key]{}, err
	}
	recs, err := s.store.List(ctx, owner)
	if err != nil {
		return Page[Key]{}, fmt.Errorf("apikey: list: %w", err)
	}
	var page Page[Key]
	for _, rec := range recs {
		if cursor != "" && (rec.CreatedAt.Before(after) || rec.CreatedAt.Equal(after) && rec.ID <= id) {
			continue
		}
		if len(page.Items) == n {
			last := page.Items[n-1]
			page.Next = encodeCursor(last.CreatedAt, last.ID)
			break
		}
		page.Items = append(page.Items, rec.Key.clone())
	}
	return page, nil
}

// A list cursor is the creation time (Unix nanoseconds) and ID of the
// last key of a page, base64url-encoded: opaque to clients, and since it
// only says where to start in the caller's own keys, a changed one can
// reveal nothing else.
func encodeCursor(at time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(at.UnixNano(), 10) + "." + id))
}

func decodeCursor(c string) (time.Time, string, error) {
	if c == "" {
		return time.Time{}, "", nil
	}
	bad := invalid("cursor", "is not a cursor of this listing")
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return time.Time{}, "", bad
	}
	ns, id, ok := strings.Cut(string(raw), ".")
	n, err := strconv.ParseInt(ns, 10, 64)
	if !ok || err != nil || id == "" {
		return time.Time{}, "", bad
	}
	return time.Unix(0, n).UTC(), id, nil
}

// Events returns a page of owner's audit trail, newest first, or of its
// key keyID when that is not "" (the key may since have been deleted):
// up to limit events (0 is 20, at most 100) after the one
// cursor names. It fails with [errors.ErrUnsupported] when the store
// keeps no events ([event.Store]).
func (s *Service) Events(ctx context.Context, owner, keyID, cursor string, limit int) (Page[event.Event], error) {
	n, err := pageSize(limit)
	if err != nil {
		return Page[event.Event]{}, err
	}
	es, ok := s.store.(event.Store)
	if !ok {
		return Page[event.Event]{}, fmt.Errorf("apikey: events: %w", errors.ErrUnsupported)
	}
	if owner == "" {
		return Page[event.Event]{}, nil
	}
	if err := checkAccountID(owner); err != nil {
		return Page[event.Event]{}, err
	}
	// One more than asked tells whether there is a next page.
	evs, err := es.Events(ctx, owner, keyID, cursor, n+1)
	if err != nil {
		if errors.Is(err, ErrInvalidInput) {
			return Page[event.Event]{}, err
		}
		return Page[event.Event]{}, fmt.Errorf("apikey: events: %w", err)
	}
	page := Page[event.Event]{Items: evs}
	if len(evs) > n {
		page.Items = evs[:n]
		page.Next = evs[n-1].ID
	}
	return page, nil
}
