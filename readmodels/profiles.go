package readmodels

import (
	"context"
	"fmt"

	"github.com/google/uuid"
)

// ProfileReader is what the profile queries need of the profile read model.
type ProfileReader interface {
	Profile(ctx context.Context, id uuid.UUID) (ProfileView, bool, error)
}

// ProfileQueries answers the user service's reads.
type ProfileQueries struct {
	profiles ProfileReader
}

// NewProfileQueries returns the profile queries over profiles.
func NewProfileQueries(profiles ProfileReader) *ProfileQueries {
	return &ProfileQueries{profiles: profiles}
}

// Profile returns the profile of user id. An unknown id is a
// *NotFoundError.
func (q *ProfileQueries) Profile(ctx context.Context, id uuid.UUID) (ProfileView, error) {
	v, ok, err := q.profiles.Profile(ctx, id)
	if err != nil {
		return ProfileView{}, fmt.Errorf("readmodels: get profile %s: %w", id, err)
	}
	if !ok {
		return ProfileView{}, &NotFoundError{View: "profile", ID: id}
	}
	return v, nil
}
