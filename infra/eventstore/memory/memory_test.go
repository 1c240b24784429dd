package memory_test

import (
	"testing"

	"github.com/ticketd/ticketing/infra/eventstore/memory"
	"github.com/ticketd/ticketing/infra/eventstore/storetest"
)

// The memory store stands in for the embedded one in the command side's
// tests, so it must keep the same contract.
func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Store { return memory.New() })
}
