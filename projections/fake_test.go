package projections_test

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/projections"
	"github.com/ticketd/ticketing/readmodels"
)

// memStore is an in-memory store for every projection, with the
// checkpoint check of the real ones, that remembers each commit so tests
// can see what a batch wrote.
type memStore struct {
	mu          sync.Mutex
	checkpoints map[string]uint64
	events      map[uuid.UUID]readmodels.EventView
	holds       map[uuid.UUID]projections.SeatHold
	bookings    map[uuid.UUID]readmodels.BookingView
	payments    map[uuid.UUID]readmodels.PaymentView
	profiles    map[uuid.UUID]readmodels.ProfileView

	eventCommits   []projections.EventsCommit
	bookingCommits []projections.BookingsCommit
	paymentCommits []projections.PaymentsCommit
	profileCommits []projections.ProfilesCommit
}

func newMemStore() *memStore {
	return &memStore{
		checkpoints: map[string]uint64{},
		events:      map[uuid.UUID]readmodels.EventView{},
		holds:       map[uuid.UUID]projections.SeatHold{},
		bookings:    map[uuid.UUID]readmodels.BookingView{},
		payments:    map[uuid.UUID]readmodels.PaymentView{},
		profiles:    map[uuid.UUID]readmodels.ProfileView{},
	}
}

func (s *memStore) advance(name string, from, to uint64) error {
	if cp := s.checkpoints[name]; cp != from {
		return fmt.Errorf("memstore: %s is at %d, commit expects %d: %w", name, cp, from, projections.ErrCheckpointConflict)
	}
	s.checkpoints[name] = to
	return nil
}

func (s *memStore) checkpoint(name string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.checkpoints[name]
}

func get[V any](s *memStore, m map[uuid.UUID]V, id uuid.UUID) (V, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := m[id]
	return v, ok, nil
}

type memEvents struct{ *memStore }

func (s memEvents) Checkpoint(context.Context) (uint64, error) {
	return s.checkpoint(projections.NameEvents), nil
}
func (s memEvents) Event(_ context.Context, id uuid.UUID) (readmodels.EventView, bool, error) {
	return get(s.memStore, s.events, id)
}
func (s memEvents) SeatHold(_ context.Context, id uuid.UUID) (projections.SeatHold, bool, error) {
	return get(s.memStore, s.holds, id)
}
func (s memEvents) Commit(_ context.Context, c projections.EventsCommit) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.advance(projections.NameEvents, c.From, c.To); err != nil {
		return err
	}
	for _, v := range c.Events {
		v.TicketTypes = slices.Clone(v.TicketTypes)
		s.events[v.ID] = v
	}
	for _, h := range c.Holds {
		s.holds[h.BookingID] = h
	}
	for _, id := range c.Released {
		delete(s.holds, id)
	}
	s.eventCommits = append(s.eventCommits, c)
	return nil
}

type memBookings struct{ *memStore }

func (s memBookings) Checkpoint(context.Context) (uint64, error) {
	return s.checkpoint(projections.NameBookings), nil
}
func (s memBookings) Booking(_ context.Context, id uuid.UUID) (readmodels.BookingView, bool, error) {
	return get(s.memStore, s.bookings, id)
}
func (s memBookings) Commit(_ context.Context, c projections.BookingsCommit) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.advance(projections.NameBookings, c.From, c.To); err != nil {
		return err
	}
	for _, v := range c.Bookings {
		s.bookings[v.ID] = v
	}
	s.bookingCommits = append(s.bookingCommits, c)
	return nil
}

type memPayments struct{ *memStore }

func (s memPayments) Checkpoint(context.Context) (uint64, error) {
	return s.checkpoint(projections.NamePayments), nil
}
func (s memPayments) Payment(_ context.Context, id uuid.UUID) (readmodels.PaymentView, bool, error) {
	return get(s.memStore, s.payments, id)
}
func (s memPayments) Commit(_ context.Context, c projections.PaymentsCommit) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.advance(projections.NamePayments, c.From, c.To); err != nil {
		return err
	}
	for _, v := range c.Payments {
		s.payments[v.ID] = v
	}
	s.paymentCommits = append(s.paymentCommits, c)
	return nil
}

type memProfiles struct{ *memStore }

func (s memProfiles) Checkpoint(context.Context) (uint64, error) {
	return s.checkpoint(projections.NameProfiles), nil
}
func (s memProfiles) Profile(_ context.Context, id uuid.UUID) (readmodels.ProfileView, bool, error) {
	return get(s.memStore, s.profiles, id)
}
func (s memProfiles) Commit(_ context.Context, c projections.ProfilesCommit) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.advance(projections.NameProfiles, c.From, c.To); err != nil {
		return err
	}
	for _, v := range c.Profiles {
		s.profiles[v.ID] = v
	}
	s.profileCommits = append(s.profileCommits, c)
	return nil
}

// publisher remembers what the payments projector published.
type publisher struct {
	mu        sync.Mutex
	published []readmodels.PaymentView
}

func (p *publisher) Publish(_ context.Context, v readmodels.PaymentView) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.published = append(p.published, v)
	return nil
}

func (p *publisher) all() []readmodels.PaymentView {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.published)
}
