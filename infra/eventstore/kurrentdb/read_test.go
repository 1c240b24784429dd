package kurrentdb

import (
	"math"
	"reflect"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/ticketd/ticketing/domain/es"
)

func TestStreamState(t *testing.T) {
	cases := []struct {
		name     string
		expected es.ExpectedRevision
		want     esdb.ExpectedRevision
	}{
		{"any", es.Any, esdb.Any{}},
		{"no stream", es.NoStream, esdb.NoStream{}},
		{"stream exists", es.StreamExists, esdb.StreamExists{}},
		{"exact 0", es.Exact(0), esdb.StreamRevision{Value: 0}},
		{"exact 41", es.Exact(41), esdb.StreamRevision{Value: 41}},
		{"a new aggregate's version", es.ExpectVersion(-1), esdb.NoStream{}},
		{"largest the server can hold", es.Exact(math.MaxInt64), esdb.StreamRevision{Value: math.MaxInt64}},
	}
	for _, tc := range cases {
		got, ok := streamState(tc.expected)
		if !ok || got != tc.want {
			t.Errorf("%s: streamState = %#v, %v; want %#v", tc.name, got, ok, tc.want)
		}
	}
	// The server reads revisions as signed numbers: 2^63 would come out
	// as "no stream".
	if got, ok := streamState(es.Exact(math.MaxInt64 + 1)); ok {
		t.Errorf("exact 2^63 maps to %#v", got)
	}
}

func TestPlanRead(t *testing.T) {
	fwd, bwd := esdb.Forwards, esdb.Backwards
	all := uint64(math.MaxInt64)
	cases := []struct {
		name    string
		opts    es.ReadOptions
		dir     esdb.Direction
		from    esdb.StreamPosition
		count   uint64
		pastEnd bool
	}{
		{"forward, all", es.ReadOptions{}, fwd, esdb.Revision(0), all, false},
		{"forward from 2, limit 3", es.ReadOptions{From: 2, Limit: 3}, fwd, esdb.Revision(2), 3, false},
		{"forward past what the server can hold", es.ReadOptions{From: math.MaxUint64}, fwd, esdb.Revision(math.MaxInt64), all, false},
		{"forward from the end: the last record", es.ReadOptions{FromEnd: true, Limit: 5}, bwd, esdb.End{}, 1, false},
		{"backward from the end", es.ReadOptions{Direction: es.Backward, FromEnd: true}, bwd, esdb.End{}, all, false},
		{"backward from the end, limit 2", es.ReadOptions{Direction: es.Backward, FromEnd: true, Limit: 2}, bwd, esdb.End{}, 2, false},
		{"backward from 3, limit 2", es.ReadOptions{Direction: es.Backward, From: 3, Limit: 2}, bwd, esdb.Revision(3), 2, true},
		{"backward from 0", es.ReadOptions{Direction: es.Backward}, bwd, esdb.Revision(0), all, true},
		{"backward from the largest revision", es.ReadOptions{Direction: es.Backward, From: math.MaxUint64}, bwd, esdb.End{}, all, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := planRead(tc.opts)
			if p.opts.Direction != tc.dir || !reflect.DeepEqual(p.opts.From, tc.from) || p.count != tc.count || p.pastEnd != tc.pastEnd {
				t.Errorf("plan = %v from %#v count %d pastEnd %v; want %v from %#v count %d pastEnd %v",
					p.opts.Direction, p.opts.From, p.count, p.pastEnd, tc.dir, tc.from, tc.count, tc.pastEnd)
			}
			if !p.opts.ResolveLinkTos {
				t.Error("stream reads do not follow links")
			}
		})
	}
}

func TestStartAt(t *testing.T) {
	if _, ok := startAt(0).(esdb.Start); !ok {
		t.Errorf("startAt(0) = %#v, want the start of $all", startAt(0))
	}
	if got := startAt(4096); got != (esdb.Position{Commit: 4096, Prepare: 4096}) {
		t.Errorf("startAt(4096) = %#v", got)
	}
}
