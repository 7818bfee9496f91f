package webhook_test

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/keygate/keygate/apikey/event/webhook"
)

// A receiver verifies a message before it reads it.
func ExampleVerify() {
	secret := webhook.NewSecret() // shared with the receiver once, when the endpoint is made
	body := []byte(`{"type":"key.revoked"}`)

	// What a sender puts on the request.
	now := time.Now()
	sig, err := webhook.Sign("evt_1", now, body, secret)
	if err != nil {
		panic(err)
	}
	h := http.Header{}
	h.Set(webhook.HeaderID, "evt_1")
	h.Set(webhook.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	h.Set(webhook.HeaderSignature, sig)

	// What the receiver checks.
	fmt.Println(webhook.Verify(secret, h, body))
	fmt.Println(webhook.Verify(secret, h, []byte(`{"type":"key.created"}`)))
	// Output:
	// <nil>
	// webhook: no valid signature
}
