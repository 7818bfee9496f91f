// Command bare is the floor of the end-to-end measurement (run.sh): a
// plain net/http server answering GET /api/v1/health as the reference
// service does, with no authentication and no limits.
package main

import (
	"encoding/json"
	"log"
	"net/http"
	"os"
)

func main() {
	http.HandleFunc("GET /api/v1/health", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_ = json.NewEncoder(w).Encode(map[string]string{"status": "ok"})
	})
	log.Fatal(http.ListenAndServe(os.Getenv("ADDR"), nil))
}
