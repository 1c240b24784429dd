package commands

import (
	"context"
	"errors"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/es"
	"github.com/ticketd/ticketing/domain/user"
)

// RegisterUser signs a person up.
type RegisterUser struct {
	UserID   uuid.UUID
	Email    string
	Password string
	Name     string
	Role     user.Role
}

// Register reserves the email, then records the user.
//
// The reservation stream is appended with "no stream", so of two
// registrations racing for one email exactly one wins, whatever the
// process. A crash between the two appends leaves a reservation without a
// user; the next registration of that email completes it under the
// reserved id instead of locking the email forever.
func (h *Users) Register(ctx context.Context, msg Msg, cmd RegisterUser) (UserState, error) {
	if err := user.CheckCredentials(cmd.Email, cmd.Password, cmd.Name); err != nil {
		return UserState{}, err
	}
	hash, err := h.hasher.Hash(cmd.Password)
	if err != nil {
		return UserState{}, err
	}
	now := h.repo.clock().UTC()
	id := cmd.UserID
	if _, err := user.New(id, cmd.Email, cmd.Name, hash, cmd.Role, now); err != nil {
		return UserState{}, err
	}
	reservation := user.EmailStream(cmd.Email)
	res := &reservationAgg{}
	res.Record(user.EmailReserved{Email: user.NormalizeEmail(cmd.Email), UserID: id, At: now})
	_, err = h.repo.Save(ctx, reservation, id, res, msg)
	if errors.Is(err, es.ErrConflict) {
		owner, ownerErr := h.owner(ctx, cmd.Email)
		if ownerErr != nil {
			return UserState{}, ownerErr
		}
		if _, loadErr := h.load(ctx, owner); !errors.Is(loadErr, ErrUserNotFound) {
			return UserState{}, ErrEmailTaken
		}
		id = owner // complete the interrupted registration
	} else if err != nil {
		return UserState{}, err
	}
	u, err := user.New(id, cmd.Email, cmd.Name, hash, cmd.Role, now)
	if err != nil {
		return UserState{}, err
	}
	if _, err := h.repo.Save(ctx, user.Stream(id), id, u, msg); err != nil {
		if errors.Is(err, es.ErrConflict) {
			return UserState{}, ErrEmailTaken
		}
		return UserState{}, err
	}
	return userState(u), nil
}

// reservationAgg is the one-event aggregate of an email reservation stream.
type reservationAgg struct{ es.Changes }

func (*reservationAgg) Apply(es.Payload) {}
