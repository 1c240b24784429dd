package kafka

import (
	"fmt"
	"reflect"
	"sort"
	"testing"

	ck "github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

func offsets(tps []ck.TopicPartition) map[string]int64 {
	out := map[string]int64{}
	for _, tp := range tps {
		out[fmt.Sprintf("%s/%d", *tp.Topic, tp.Partition)] = int64(tp.Offset)
	}
	return out
}

func TestTrackerCommitsOnlyPastTheDonePrefixOfEachPartition(t *testing.T) {
	a, b := partition{"t", 0}, partition{"t", 1}
	type step struct {
		do   func(tr *tracker)
		want map[string]int64 // committable after the step
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"nothing done, nothing to commit", []step{
			{func(tr *tracker) { tr.dispatched(a, 10); tr.dispatched(a, 11) }, map[string]int64{}},
		}},
		{"a later message done first holds the commit back", []step{
			{func(tr *tracker) { tr.dispatched(a, 10); tr.dispatched(a, 11); tr.dispatched(a, 12) }, map[string]int64{}},
			{func(tr *tracker) { tr.completed(a, 12) }, map[string]int64{}},
			{func(tr *tracker) { tr.completed(a, 10) }, map[string]int64{"t/0": 11}},
			{func(tr *tracker) { tr.completed(a, 11) }, map[string]int64{"t/0": 13}},
		}},
		{"offsets with gaps (transaction markers)", []step{
			{func(tr *tracker) { tr.dispatched(a, 3); tr.dispatched(a, 7) }, map[string]int64{}},
			{func(tr *tracker) { tr.completed(a, 3); tr.completed(a, 7) }, map[string]int64{"t/0": 8}},
		}},
		{"partitions are independent", []step{
			{func(tr *tracker) { tr.dispatched(a, 0); tr.dispatched(b, 0); tr.dispatched(b, 1) }, map[string]int64{}},
			{func(tr *tracker) { tr.completed(b, 0); tr.completed(b, 1) }, map[string]int64{"t/1": 2}},
		}},
		{"skipped messages pass once everything before them is done", []step{
			{func(tr *tracker) { tr.skipped(a, 0) }, map[string]int64{"t/0": 1}},
			{func(tr *tracker) { tr.dispatched(a, 1); tr.skipped(a, 2) }, map[string]int64{"t/0": 1}},
			{func(tr *tracker) { tr.completed(a, 1) }, map[string]int64{"t/0": 3}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTracker()
			for i, s := range tt.steps {
				s.do(tr)
				// Report committable without marking it committed, so
				// that each step shows the full picture.
				if got := offsets(tr.committable()); !reflect.DeepEqual(got, s.want) {
					t.Fatalf("step %d: committable %v, want %v", i, got, s.want)
				}
			}
		})
	}
}

func TestTrackerReportsEachCommitOnce(t *testing.T) {
	a := partition{"t", 0}
	tr := newTracker()
	tr.dispatched(a, 5)
	tr.completed(a, 5)
	first := tr.committable()
	if len(first) != 1 || first[0].Offset != 6 {
		t.Fatalf("committable %v, want t[0]@6", first)
	}
	tr.committed(first)
	if again := tr.committable(); len(again) != 0 {
		t.Errorf("committable after commit %v, want nothing new", again)
	}
	if tr.pending() != 0 {
		t.Errorf("pending %d, want 0", tr.pending())
	}
}

func TestSeenSetForgetsTheOldest(t *testing.T) {
	s := newSeenSet(3)
	for _, id := range []string{"a", "b", "c", "a", "d"} { // "a" refreshed, so "b" goes
		s.add(id)
	}
	var kept []string
	for _, id := range []string{"a", "b", "c", "d"} {
		if s.contains(id) {
			kept = append(kept, id)
		}
	}
	sort.Strings(kept)
	if fmt.Sprint(kept) != "[a c d]" {
		t.Errorf("kept %v, want [a c d]", kept)
	}
}
