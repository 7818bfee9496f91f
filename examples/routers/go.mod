module github.com/keygate/keygate/examples/routers

go 1.26

require (
	github.com/go-chi/chi/v5 v5.5.0
	github.com/gorilla/mux v1.8.1
	github.com/keygate/keygate v0.0.0
)

require golang.org/x/time v0.15.0 // indirect

replace github.com/keygate/keygate => ../..
