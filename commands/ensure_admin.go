package commands

import (
	"context"
	"errors"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/user"
)

// EnsureAdmin makes sure an administrator with this email exists: it
// registers one, or grants the admin role to the user who has the email.
// Running it at every start-up is harmless. The password of an existing
// user is left as it is.
func (h *Users) EnsureAdmin(ctx context.Context, email, password, name string) (UserState, error) {
	// The message id derives from the email, so two instances bootstrapping
	// the same admin at once append the same events.
	msg := Msg{ID: uuid.NewSHA1(uuid.NameSpaceURL, []byte("ticketd:admin:"+user.NormalizeEmail(email)))}
	msg.CorrelationID = msg.ID
	state, err := h.Register(ctx, msg, RegisterUser{UserID: msg.ID, Email: email, Password: password, Name: name, Role: user.Admin})
	if !errors.Is(err, ErrEmailTaken) {
		return state, err
	}
	id, err := h.owner(ctx, email)
	if err != nil {
		return UserState{}, err
	}
	err = retry(ctx, func() error {
		u, err := h.load(ctx, id)
		if err != nil {
			return err
		}
		if err := u.ChangeRole(user.Admin, h.repo.clock().UTC()); err != nil {
			return err
		}
		if _, err := h.repo.Save(ctx, user.Stream(id), id, u, msg); err != nil {
			return err
		}
		state = userState(u)
		return nil
	})
	return state, err
}
