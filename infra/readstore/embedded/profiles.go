package embedded

import (
	"context"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/infra/readstore/viewcodec"
	"github.com/ticketd/ticketing/projections"
	"github.com/ticketd/ticketing/readmodels"
)

var (
	_ readmodels.ProfileReader  = (*ProfileViews)(nil)
	_ projections.ProfilesStore = (*ProfileViews)(nil)
)

// ProfileViews is the profile read model: the reader port of the profile
// queries and the store port of the profiles projector.
type ProfileViews struct {
	sp *space[byIDGen[readmodels.ProfileView], *byIDGen[readmodels.ProfileView]]
}

var (
	newProfilesGen  = newByIDGen[readmodels.ProfileView]
	loadProfilesGen = loadByID(viewcodec.DecodeProfile)
)

func wrapProfiles(sp *space[byIDGen[readmodels.ProfileView], *byIDGen[readmodels.ProfileView]]) *ProfileViews {
	return &ProfileViews{sp: sp}
}

func profileID(v *readmodels.ProfileView) uuid.UUID { return v.ID }

// Checkpoint is the position up to which the profiles projection has
// committed.
func (v *ProfileViews) Checkpoint(context.Context) (uint64, error) {
	return v.sp.gen().checkpoint.Load(), nil
}

// Profile returns the profile of user id.
func (v *ProfileViews) Profile(_ context.Context, id uuid.UUID) (readmodels.ProfileView, bool, error) {
	p, ok := v.sp.gen().get(id)
	return p, ok, nil
}

// Commit stores one batch of the profiles projection atomically and
// durably, then publishes it to readers.
func (v *ProfileViews) Commit(_ context.Context, c projections.ProfilesCommit) error {
	return commitByID(v.sp, c.From, c.To, c.Profiles, profileID, viewcodec.EncodeProfile)
}

// Stage returns a fresh, empty version of the profile read model for a
// rebuild; see EventViews.Stage.
func (v *ProfileViews) Stage() (*ProfileViews, error) {
	sp, err := v.sp.stage()
	if err != nil {
		return nil, err
	}
	return &ProfileViews{sp: sp}, nil
}

// Promote switches readers and writers of v to the staged version; see
// EventViews.Promote.
func (v *ProfileViews) Promote(staged *ProfileViews) error {
	if staged == nil {
		return v.sp.promote(nil)
	}
	return v.sp.promote(staged.sp)
}

// Discard deletes a staged version that will not be promoted.
func (v *ProfileViews) Discard() error { return v.sp.discard() }
