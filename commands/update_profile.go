package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/user"
)

// UpdateProfile changes a user's name and phone; nil leaves a field as is.
type UpdateProfile struct {
	UserID uuid.UUID
	Name   *string
	Phone  *string
}

// UpdateProfile decides and stores the change, retrying on conflicts.
func (h *Users) UpdateProfile(ctx context.Context, msg Msg, cmd UpdateProfile) (UserState, error) {
	var state UserState
	err := retry(ctx, func() error {
		u, err := h.load(ctx, cmd.UserID)
		if err != nil {
			return err
		}
		if err := u.UpdateProfile(cmd.Name, cmd.Phone, h.repo.clock().UTC()); err != nil {
			return err
		}
		if _, err := h.repo.Save(ctx, user.Stream(cmd.UserID), cmd.UserID, u, msg); err != nil {
			return err
		}
		state = userState(u)
		return nil
	})
	return state, err
}

// Profile reads a user's profile from the write side. The HTTP layer
// serves GET /profile from the read model; this is for command responses.
func (h *Users) Profile(ctx context.Context, id uuid.UUID) (UserState, error) {
	u, err := h.load(ctx, id)
	if err != nil {
		return UserState{}, err
	}
	return userState(u), nil
}
