package commands

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/es"
	"github.com/ticketd/ticketing/domain/fault"
	"github.com/ticketd/ticketing/domain/user"
)

// PasswordHasher hashes and verifies passwords (argon2id in production).
type PasswordHasher interface {
	Hash(password string) (string, error)
	Verify(hash, password string) bool
}

// ErrEmailTaken refuses a registration whose email belongs to another user.
var ErrEmailTaken = fmt.Errorf("commands: email already registered: %w", fault.ErrConflict)

// ErrBadCredentials is the one answer to a login with an unknown email or a
// wrong password, so that a login does not reveal which emails exist.
var ErrBadCredentials = errors.New("commands: invalid email or password")

// ErrUserNotFound refuses a command about a user that does not exist.
var ErrUserNotFound = fmt.Errorf("commands: user not found: %w", fault.ErrNotFound)

// UserState is a user as its last command left it.
type UserState struct {
	ID        uuid.UUID
	Email     string
	Name      string
	Phone     string
	Role      user.Role
	CreatedAt time.Time
	UpdatedAt time.Time
}

func userState(u *user.User) UserState {
	return UserState{ID: u.ID(), Email: u.Email(), Name: u.Name(), Phone: u.Phone(), Role: u.Role(), CreatedAt: u.CreatedAt(), UpdatedAt: u.UpdatedAt()}
}

// Users handles the user service's commands.
type Users struct {
	repo   *Repository
	hasher PasswordHasher

	dummyOnce sync.Once
	dummy     string
}

// NewUsers returns the user service's command handlers.
func NewUsers(repo *Repository, hasher PasswordHasher) *Users {
	return &Users{repo: repo, hasher: hasher}
}

// owner resolves an email to the user id its reservation names, or
// uuid.Nil when nobody reserved it.
func (h *Users) owner(ctx context.Context, email string) (uuid.UUID, error) {
	recs, err := h.repo.store.ReadStream(ctx, user.EmailStream(email), es.ReadOptions{Limit: 1})
	if errors.Is(err, es.ErrStreamNotFound) {
		return uuid.Nil, nil
	}
	if err != nil {
		return uuid.Nil, fmt.Errorf("commands: read email reservation: %w", err)
	}
	p, err := h.repo.reg.Decode(&recs[0])
	if err != nil {
		return uuid.Nil, err
	}
	return p.(user.EmailReserved).UserID, nil
}

func (h *Users) load(ctx context.Context, id uuid.UUID) (*user.User, error) {
	u := &user.User{}
	if err := h.repo.Load(ctx, user.Stream(id), u); err != nil {
		return nil, err
	}
	if !u.Exists() {
		return nil, ErrUserNotFound
	}
	return u, nil
}
