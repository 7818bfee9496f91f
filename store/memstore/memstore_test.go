package memstore_test

import (
	"testing"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/store/memstore"
	"github.com/keygate/keygate/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) apikey.Store { return memstore.New() })
}
