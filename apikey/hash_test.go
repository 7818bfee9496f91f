package apikey_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/store/memstore"
)

func pepper(version int, size int) apikey.Pepper {
	return apikey.Pepper{Version: version, Secret: bytes.Repeat([]byte{byte(version)}, size)}
}

// The stored hash is HMAC-SHA256 under the pepper, for short, block-sized
// and long peppers.
func TestPepperedHashIsHMACSHA256(t *testing.T) {
	t.Parallel()
	for _, size := range []int{32, 64, 65, 200} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			t.Parallel()
			store := memstore.New()
			p := pepper(1, size)
			svc, err := apikey.New(store, apikey.Config{Peppers: []apikey.Pepper{p}})
			require.NoError(t, err)
			issued, err := svc.Create(context.Background(), apikey.CreateParams{Owner: "acct"})
			require.NoError(t, err)

			m := hmac.New(sha256.New, p.Secret)
			m.Write([]byte(issued.Secret.Reveal()))
			rec, err := store.Lookup(context.Background(), apikey.Hash(m.Sum(nil)), "")
			require.NoError(t, err)
			assert.Equal(t, 1, rec.HashVersion)
			_, err = store.Lookup(context.Background(), apikey.Hash(sha256.Sum256([]byte(issued.Secret.Reveal()))), "")
			require.ErrorIs(t, err, apikey.ErrNotFound, "no plain hash is stored")
		})
	}
}

// Rotating the pepper: keys hashed with the old one keep verifying while it
// is listed; new keys use the new one; dropping it retires the old keys.
func TestPepperRotation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := memstore.New()
	newSvc := func(cfg apikey.Config) *apikey.Service {
		svc, err := apikey.New(store, cfg)
		require.NoError(t, err)
		return svc
	}
	plain := newSvc(apikey.Config{})
	unpeppered, err := plain.Create(ctx, apikey.CreateParams{Owner: "acct"})
	require.NoError(t, err)

	v1 := newSvc(apikey.Config{Peppers: []apikey.Pepper{pepper(1, 32)}, VerifyUnpeppered: true})
	_, err = v1.Verify(ctx, unpeppered.Secret.Reveal())
	require.NoError(t, err, "VerifyUnpeppered migrates plain hashes")
	old, err := v1.Create(ctx, apikey.CreateParams{Owner: "acct"})
	require.NoError(t, err)

	v2 := newSvc(apikey.Config{Peppers: []apikey.Pepper{pepper(2, 32), pepper(1, 32)}})
	_, err = v2.Verify(ctx, old.Secret.Reveal())
	require.NoError(t, err)
	_, err = v2.Verify(ctx, unpeppered.Secret.Reveal())
	require.ErrorIs(t, err, apikey.ErrInvalidKey)
	fresh, err := v2.Create(ctx, apikey.CreateParams{Owner: "acct"})
	require.NoError(t, err)
	p, err := v2.Verify(ctx, fresh.Secret.Reveal())
	require.NoError(t, err)
	rec, err := store.Get(ctx, p.KeyID())
	require.NoError(t, err)
	assert.Equal(t, 2, rec.HashVersion)

	only2 := newSvc(apikey.Config{Peppers: []apikey.Pepper{pepper(2, 32)}})
	_, err = only2.Verify(ctx, old.Secret.Reveal())
	require.ErrorIs(t, err, apikey.ErrInvalidKey)
}

func TestPepperConfigRejects(t *testing.T) {
	t.Parallel()
	for name, peppers := range map[string][]apikey.Pepper{
		"version 0":         {pepper(0, 32)},
		"duplicate version": {pepper(1, 32), pepper(1, 32)},
		"short secret":      {pepper(1, 31)},
	} {
		_, err := apikey.New(memstore.New(), apikey.Config{Peppers: peppers})
		require.ErrorIs(t, err, apikey.ErrInvalidConfig, name)
	}
}

func TestPepperNeverLeaks(t *testing.T) {
	t.Parallel()
	p := apikey.Pepper{Version: 7, Secret: []byte("super-secret-pepper-material-0123456789")}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("cfg", "pepper", p)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("cfg", "pepper", p, "config", apikey.Config{Peppers: []apikey.Pepper{p}})
	b, err := json.Marshal(p)
	require.NoError(t, err)
	for _, out := range []string{fmt.Sprintf("%v %+v %#v %s %x", p, p, p, p, p), buf.String(), string(b),
		fmt.Sprintf("%+v", apikey.Config{Peppers: []apikey.Pepper{p}})} {
		assert.NotContains(t, out, "super-secret")
		assert.NotContains(t, out, "73757065722d") // hex of "super-"
	}
	assert.Contains(t, fmt.Sprint(p), "Version:7")
}
