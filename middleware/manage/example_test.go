package manage_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/middleware/manage"
	"github.com/keygate/keygate/store/memstore"
)

// Mount the key owner's REST API beside your own routes, behind your own
// login.
func Example() {
	svc, err := apikey.New(memstore.New(), apikey.Config{})
	if err != nil {
		panic(err)
	}
	keys, err := manage.New(manage.Config{
		Service: svc,
		// Your login: return the account the signed-in user manages.
		Authenticate: func(r *http.Request) (string, bool) {
			user, ok := userFromSession(r)
			return user.Account, ok
		},
	})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/api/v1/api-keys", keys)
	mux.Handle("/api/v1/api-keys/", keys)

	r := httptest.NewRequest("POST", "/api/v1/api-keys", strings.NewReader(`{"name":"CI"}`))
	r.Header.Set("Cookie", "session=alice")
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	fmt.Println(w.Code, strings.Contains(w.Body.String(), `"api_key":"kg_live_`))
	// Output:
	// 201 true
}

type user struct{ Account string }

// userFromSession stands in for the host's session check.
func userFromSession(r *http.Request) (user, bool) {
	c, err := r.Cookie("session")
	if err != nil {
		return user{}, false
	}
	return user{Account: "acct_" + c.Value}, true
}
