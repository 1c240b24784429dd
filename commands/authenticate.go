package commands

import (
	"context"
	"errors"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/user"
)

// Authenticate checks an email and password against the write side (a
// login must not be fooled by a lagging read model) and returns the user.
// An unknown email and a wrong password give the same ErrBadCredentials
// after the same hashing work, so neither the answer nor its timing tells
// them apart.
func (h *Users) Authenticate(ctx context.Context, email, password string) (UserState, error) {
	id, err := h.owner(ctx, email)
	if err != nil {
		return UserState{}, err
	}
	var u *user.User
	if id != uuid.Nil {
		if u, err = h.load(ctx, id); err != nil && !errors.Is(err, ErrUserNotFound) {
			return UserState{}, err
		}
	}
	if u == nil {
		h.hasher.Verify(h.dummyHash(), password)
		return UserState{}, ErrBadCredentials
	}
	if !h.hasher.Verify(u.PasswordHash(), password) {
		return UserState{}, ErrBadCredentials
	}
	return userState(u), nil
}

// dummyHash is what an unknown email's password is checked against.
func (h *Users) dummyHash() string {
	h.dummyOnce.Do(func() {
		h.dummy, _ = h.hasher.Hash("no one's password: it only equalises timing")
	})
	return h.dummy
}
