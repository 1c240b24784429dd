// Package user is the User aggregate: registration, profile and role, and
// the email reservation that keeps emails unique across users.
package user

import (
	"crypto/sha256"
	"encoding/hex"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/es"
	"github.com/ticketd/ticketing/domain/fault"
)

// Role is what a user may do.
type Role string

const (
	Customer Role = "customer"
	Admin    Role = "admin"
)

// Stable type names of the user's domain events.
const (
	TypeRegistered     = "user.registered"
	TypeProfileUpdated = "user.profile_updated"
	TypeRoleChanged    = "user.role_changed"
	TypeEmailReserved  = "user.email_reserved"
)

// MinPasswordLength is the shortest password accepted.
const MinPasswordLength = 8

// Registered: a user signed up (or was bootstrapped as an admin). The
// password arrives already hashed: hashing is an adapter's job.
type Registered struct {
	UserID       uuid.UUID
	Email        string
	Name         string
	PasswordHash string
	Role         Role
	At           time.Time
}

// ProfileUpdated carries the profile after the change.
type ProfileUpdated struct {
	Name  string
	Phone string
	At    time.Time
}

// RoleChanged: an operator granted or withdrew a role.
type RoleChanged struct {
	Role Role
	At   time.Time
}

// EmailReserved is the only event of an email reservation stream: the
// email belongs to UserID. It is appended with expectation "no stream", so
// that of two registrations racing for one email exactly one wins.
type EmailReserved struct {
	Email  string
	UserID uuid.UUID
	At     time.Time
}

func (Registered) EventType() string     { return TypeRegistered }
func (ProfileUpdated) EventType() string { return TypeProfileUpdated }
func (RoleChanged) EventType() string    { return TypeRoleChanged }
func (EmailReserved) EventType() string  { return TypeEmailReserved }

// Register adds the user's events to r.
func Register(r *es.Registry) {
	r.Register(Registered{}, 1)
	r.Register(ProfileUpdated{}, 1)
	r.Register(RoleChanged{}, 1)
	r.Register(EmailReserved{}, 1)
}

// Stream is the name of user id's stream.
func Stream(id uuid.UUID) string { return "user-" + id.String() }

// StreamPrefix selects every user stream (and the reservation streams).
const StreamPrefix = "user-"

// EmailStream is the reservation stream of an email, named by a hash of
// its normalized form so that addresses differing only in case collide.
func EmailStream(email string) string {
	sum := sha256.Sum256([]byte(NormalizeEmail(email)))
	return "user-email-" + hex.EncodeToString(sum[:])
}

// NormalizeEmail is the form in which emails are compared and stored.
func NormalizeEmail(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// CheckCredentials validates what a person types to register, before the
// password is hashed.
func CheckCredentials(email, password, name string) error {
	var in fault.Input
	checkEmail(&in, email)
	in.Check(utf8.RuneCountInString(password) >= MinPasswordLength, "password", "must be at least 8 characters")
	in.Check(len(password) <= 1024, "password", "must be at most 1024 bytes")
	checkName(&in, name)
	return in.Err()
}

func checkEmail(in *fault.Input, email string) {
	addr, err := mail.ParseAddress(email)
	in.Check(err == nil && addr.Address == strings.TrimSpace(email) && len(email) <= 254, "email", "must be a valid email address")
}

func checkName(in *fault.Input, name string) {
	n := utf8.RuneCountInString(strings.TrimSpace(name))
	in.Check(n >= 1 && n <= 200, "name", "is required, at most 200 characters")
}

// User is the aggregate.
type User struct {
	es.Changes

	id           uuid.UUID
	email        string
	name         string
	phone        string
	passwordHash string
	role         Role
	createdAt    time.Time
	updatedAt    time.Time
}

// New decides a registration.
func New(id uuid.UUID, email, name, passwordHash string, role Role, now time.Time) (*User, error) {
	var in fault.Input
	checkEmail(&in, email)
	checkName(&in, name)
	in.Check(passwordHash != "", "password", "is required")
	in.Check(role == Customer || role == Admin, "role", "must be customer or admin")
	if err := in.Err(); err != nil {
		return nil, err
	}
	u := &User{}
	u.record(Registered{UserID: id, Email: NormalizeEmail(email), Name: strings.TrimSpace(name), PasswordHash: passwordHash, Role: role, At: now})
	return u, nil
}

// UpdateProfile changes the fields given (nil leaves one as it is).
// Nothing is recorded when nothing changes.
func (u *User) UpdateProfile(name, phone *string, now time.Time) error {
	newName, newPhone := u.name, u.phone
	var in fault.Input
	if name != nil {
		checkName(&in, *name)
		newName = strings.TrimSpace(*name)
	}
	if phone != nil {
		newPhone = strings.TrimSpace(*phone)
		in.Check(validPhone(newPhone), "phone", "must be empty or an international number such as +6281234567890")
	}
	if err := in.Err(); err != nil {
		return err
	}
	if newName == u.name && newPhone == u.phone {
		return nil
	}
	u.record(ProfileUpdated{Name: newName, Phone: newPhone, At: now})
	return nil
}

// ChangeRole grants role. Granting the role the user has is a no-op.
func (u *User) ChangeRole(role Role, now time.Time) error {
	if role != Customer && role != Admin {
		var in fault.Input
		in.Add("role", "must be customer or admin")
		return in.Err()
	}
	if role == u.role {
		return nil
	}
	u.record(RoleChanged{Role: role, At: now})
	return nil
}

func validPhone(p string) bool {
	if p == "" {
		return true
	}
	digits := 0
	for i, r := range p {
		switch {
		case r == '+' && i == 0:
		case r >= '0' && r <= '9':
			digits++
		case r == ' ' || r == '-':
		default:
			return false
		}
	}
	return digits >= 6 && digits <= 15
}

func (u *User) record(p es.Payload) {
	u.Apply(p)
	u.Record(p)
}

// Apply mutates the state by one event.
func (u *User) Apply(p es.Payload) {
	switch e := p.(type) {
	case Registered:
		u.id, u.email, u.name, u.passwordHash, u.role = e.UserID, e.Email, e.Name, e.PasswordHash, e.Role
		u.createdAt, u.updatedAt = e.At, e.At
	case ProfileUpdated:
		u.name, u.phone, u.updatedAt = e.Name, e.Phone, e.At
	case RoleChanged:
		u.role, u.updatedAt = e.Role, e.At
	}
}

func (u *User) ID() uuid.UUID        { return u.id }
func (u *User) Email() string        { return u.email }
func (u *User) Name() string         { return u.name }
func (u *User) Phone() string        { return u.phone }
func (u *User) PasswordHash() string { return u.passwordHash }
func (u *User) Role() Role           { return u.role }
func (u *User) CreatedAt() time.Time { return u.createdAt }
func (u *User) UpdatedAt() time.Time { return u.updatedAt }
func (u *User) Exists() bool         { return u.id != uuid.Nil }
