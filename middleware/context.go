package middleware

import (
	"context"
	"net/http"
)

func contextWithAccount(r *http.Request, account string) context.Context {
	return context.WithValue(r.Context(), accountKey{}, account)
}

func accountFrom(r *http.Request) string {
	account, _ := r.Context().Value(accountKey{}).(string)
	return account
}
