package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/keygate/keygate/apikey"
)

var _ apikey.AccountStore = (*Store)(nil)

func (s *Store) accountKey(id string) string { return s.account(id) + "a" }

// Account implements [apikey.AccountStore]: one GET, bounded by
// [Config].Timeout as Lookup is, since a Service reads the account of
// every key it verifies.
func (s *Store) Account(caller context.Context, id string) (*apikey.Account, error) {
	ctx, cancel := context.WithTimeout(caller, s.timeout)
	defer cancel()
	key := s.accountKey(id)
	var data string
	err := s.breakers.Do(caller, nodeOf(ctx, s.client, key), func() (err error) {
		data, err = s.client.Get(ctx, key).Result()
		return err
	})
	if errors.Is(err, redis.Nil) {
		return nil, apikey.ErrNotFound
	}
	if err != nil {
		return nil, wrap("account", err)
	}
	a := &apikey.Account{}
	if err := json.Unmarshal([]byte(data), a); err != nil || a.ID != id {
		return nil, fmt.Errorf("redisstore: account %q: a corrupt value", id)
	}
	return a, nil
}

// putAccountScript stores an account: a new one (ARGV[2] "") or over the
// one stored if its version is still ARGV[2]; then it announces the
// change on the invalidation channel.
//
// KEYS[1] the account; ARGV[1] its JSON, ARGV[2] the version it
// replaces, ARGV[3] the channel, ARGV[4] the message.
var putAccountScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if ARGV[2] == '' then
  if cur then return 'duplicate' end
else
  if not cur then return 'missing' end
  if tostring(cjson.decode(cur).version or 0) ~= ARGV[2] then return 'conflict' end
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 'ok'
`)

// PutAccount implements [apikey.AccountStore] in one script.
func (s *Store) PutAccount(ctx context.Context, prev, next *apikey.Account) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	data, err := json.Marshal(next)
	if err != nil {
		return fmt.Errorf("redisstore: encode account %q: %w", next.ID, err)
	}
	version := ""
	if prev != nil {
		version = strconv.FormatInt(prev.Version, 10)
	}
	res, err := putAccountScript.Run(ctx, s.client, []string{s.accountKey(next.ID)},
		string(data), version, s.channel, accountMessage+next.ID).Text()
	switch {
	case err != nil:
		return wrap("put account", err)
	case res == "duplicate":
		return apikey.ErrDuplicate
	case res == "missing":
		return apikey.ErrNotFound
	case res == "conflict":
		return apikey.ErrConflict
	}
	return nil
}
