package projections

import (
	"context"
	"log/slog"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/es"
	"github.com/ticketd/ticketing/domain/user"
	"github.com/ticketd/ticketing/readmodels"
)

// ProfilesStore is what the profiles projection needs of its store.
//
// Commit stores c atomically and durably, the profiles and the move of the
// checkpoint from c.From to c.To together. If the stored checkpoint is not
// c.From it changes nothing and returns an error matching
// ErrCheckpointConflict.
type ProfilesStore interface {
	Checkpoint(ctx context.Context) (uint64, error)
	Profile(ctx context.Context, id uuid.UUID) (readmodels.ProfileView, bool, error)
	Commit(ctx context.Context, c ProfilesCommit) error
}

// ProfilesCommit is one batch of the profiles projection: each changed
// profile once.
type ProfilesCommit struct {
	From, To uint64
	Profiles []readmodels.ProfileView
}

// profilesTypes leave out user.email_reserved: a reservation stream only
// keeps emails unique, the profile carries the email.
var profilesTypes = []string{user.TypeRegistered, user.TypeProfileUpdated, user.TypeRoleChanged}

// NewProfiles returns the projector of the user profiles. reg must know
// the User aggregate's events.
func NewProfiles(log EventLog, reg *es.Registry, store ProfilesStore, logger *slog.Logger) *Projector {
	return newProjector(NameProfiles, log, reg, es.Filter{Types: profilesTypes}, &profilesProjection{store: store}, logger)
}

type profilesProjection struct {
	store ProfilesStore
}

func (p *profilesProjection) checkpoint(ctx context.Context) (uint64, error) {
	return p.store.Checkpoint(ctx)
}

func (p *profilesProjection) apply(ctx context.Context, from, to uint64, batch []decoded) error {
	w := newWorkset[readmodels.ProfileView]()
	for _, d := range batch {
		if err := p.applyOne(ctx, &w, d); err != nil {
			return err
		}
	}
	return p.store.Commit(ctx, ProfilesCommit{From: from, To: to, Profiles: w.values()})
}

func (p *profilesProjection) applyOne(ctx context.Context, w *workset[readmodels.ProfileView], d decoded) error {
	rec := d.rec
	id, err := aggregateID(rec, user.StreamPrefix)
	if err != nil {
		return err
	}
	if e, ok := d.payload.(user.Registered); ok {
		if e.UserID != uuid.Nil {
			id = e.UserID
		}
		at := e.At.UTC()
		w.put(id, &readmodels.ProfileView{
			ID: id, Email: e.Email, Name: e.Name, Role: e.Role,
			CreatedAt: at, UpdatedAt: at, Position: rec.Position,
		})
		return nil
	}
	v, err := w.get(ctx, id, p.store.Profile, nil)
	if err != nil {
		return err
	}
	if v == nil {
		return inconsistent(rec, "user %s was never registered", id)
	}
	switch e := d.payload.(type) {
	case user.ProfileUpdated:
		v.Name, v.Phone, v.UpdatedAt = e.Name, e.Phone, e.At.UTC()
	case user.RoleChanged:
		v.Role, v.UpdatedAt = e.Role, e.At.UTC()
	default:
		return nil
	}
	v.Position = rec.Position
	return nil
}
