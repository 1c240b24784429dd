package user_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/es"
	"github.com/ticketd/ticketing/domain/es/estest"
	"github.com/ticketd/ticketing/domain/fault"
	"github.com/ticketd/ticketing/domain/user"
)

var (
	registeredAt = time.Date(2030, 3, 1, 9, 0, 0, 0, time.UTC)
	now          = registeredAt.Add(24 * time.Hour)

	userID = uuid.MustParse("00000000-0000-4000-8000-00000000000a")

	registered = user.Registered{UserID: userID, Email: "ada@example.com", Name: "Ada", PasswordHash: "$2a$hash", Role: user.Customer, At: registeredAt}
	withPhone  = user.ProfileUpdated{Name: "Ada", Phone: "+6281234567890", At: registeredAt.Add(time.Hour)}
)

func ptr(s string) *string { return &s }

// invalidFields returns the fields a validation failure names, failing the
// test if err is not one.
func invalidFields(t *testing.T, err error) []string {
	t.Helper()
	in, ok := err.(*fault.Input)
	if !ok {
		t.Fatalf("error %v (%T) is not a *fault.Input", err, err)
	}
	var fields []string
	for _, f := range in.Fields {
		fields = append(fields, f.Field)
		if f.Message == "" {
			t.Errorf("field %s has no message", f.Field)
		}
	}
	return fields
}

func TestCheckCredentials(t *testing.T) {
	tests := []struct {
		name                  string
		email, password, full string
		fields                []string
	}{
		{"valid", "ada@example.com", "correct horse", "Ada Lovelace", nil},
		{"email in capitals", "Ada@Example.COM", "correct horse", "Ada", nil},
		{"email with spaces around", "  ada@example.com ", "correct horse", "Ada", nil},
		{"shortest password", "ada@example.com", "12345678", "Ada", nil},
		{"password counted in characters, not bytes", "ada@example.com", "pässwörd", "Ada", nil},
		{"longest password", "ada@example.com", strings.Repeat("p", 1024), "Ada", nil},
		{"longest name", "ada@example.com", "correct horse", strings.Repeat("é", 200), nil},
		{"no email", "", "correct horse", "Ada", []string{"email"}},
		{"no at sign", "ada.example.com", "correct horse", "Ada", []string{"email"}},
		{"nothing before the at sign", "@example.com", "correct horse", "Ada", []string{"email"}},
		{"nothing after the at sign", "ada@", "correct horse", "Ada", []string{"email"}},
		{"a display name", "Ada <ada@example.com>", "correct horse", "Ada", []string{"email"}},
		{"two addresses", "ada@example.com, bob@example.com", "correct horse", "Ada", []string{"email"}},
		{"email too long", strings.Repeat("a", 64) + "@" + strings.Repeat("b", 186) + ".com", "correct horse", "Ada", []string{"email"}},
		{"password too short", "ada@example.com", "1234567", "Ada", []string{"password"}},
		{"password of 7 characters in 14 bytes", "ada@example.com", "äöüäöüä", "Ada", []string{"password"}},
		{"password too long", "ada@example.com", strings.Repeat("p", 1025), "Ada", []string{"password"}},
		{"no name", "ada@example.com", "correct horse", "", []string{"name"}},
		{"a blank name", "ada@example.com", "correct horse", "   ", []string{"name"}},
		{"name too long", "ada@example.com", "correct horse", strings.Repeat("é", 201), []string{"name"}},
		{"everything wrong", "nope", "short", "", []string{"email", "password", "name"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := user.CheckCredentials(tt.email, tt.password, tt.full)
			if tt.fields == nil {
				if err != nil {
					t.Fatalf("refused valid credentials: %v", err)
				}
				return
			}
			if got := invalidFields(t, err); !slices.Equal(got, tt.fields) {
				t.Errorf("invalid fields = %v, want %v", got, tt.fields)
			}
		})
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name        string
		email, full string
		hash        string
		role        user.Role
		want        user.Registered // when valid
		fields      []string
	}{
		{"customer", "ada@example.com", "Ada", "$2a$hash", user.Customer,
			user.Registered{UserID: userID, Email: "ada@example.com", Name: "Ada", PasswordHash: "$2a$hash", Role: user.Customer, At: registeredAt}, nil},
		{"admin", "root@example.com", "Root", "$2a$hash", user.Admin,
			user.Registered{UserID: userID, Email: "root@example.com", Name: "Root", PasswordHash: "$2a$hash", Role: user.Admin, At: registeredAt}, nil},
		{"email stored normalized, name trimmed", "  Ada@Example.COM ", "  Ada Lovelace ", "$2a$hash", user.Customer,
			user.Registered{UserID: userID, Email: "ada@example.com", Name: "Ada Lovelace", PasswordHash: "$2a$hash", Role: user.Customer, At: registeredAt}, nil},
		{"invalid email", "ada", "Ada", "$2a$hash", user.Customer, user.Registered{}, []string{"email"}},
		{"no name", "ada@example.com", "", "$2a$hash", user.Customer, user.Registered{}, []string{"name"}},
		{"no password hash", "ada@example.com", "Ada", "", user.Customer, user.Registered{}, []string{"password"}},
		{"unknown role", "ada@example.com", "Ada", "$2a$hash", "root", user.Registered{}, []string{"role"}},
		{"no role", "ada@example.com", "Ada", "$2a$hash", "", user.Registered{}, []string{"role"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := user.New(userID, tt.email, tt.full, tt.hash, tt.role, registeredAt)
			if tt.fields == nil {
				estest.New(t, u, err).Then(tt.want)
				if u.Email() != tt.want.Email || u.Role() != tt.role || !u.Exists() || u.ID() != userID || u.PasswordHash() != tt.hash {
					t.Errorf("new user reads %s %s %s", u.ID(), u.Email(), u.Role())
				}
				return
			}
			estest.New(t, u, err).ThenError(new(*fault.Input))
			if got := invalidFields(t, err); !slices.Equal(got, tt.fields) {
				t.Errorf("invalid fields = %v, want %v", got, tt.fields)
			}
		})
	}
}

func TestEmailsDifferingInCaseShareOneReservation(t *testing.T) {
	same := []string{"ada@example.com", "Ada@Example.com", "ADA@EXAMPLE.COM", "  ada@example.com\t"}
	want := user.EmailStream(same[0])
	for _, e := range same {
		if got := user.EmailStream(e); got != want {
			t.Errorf("EmailStream(%q) = %s, want %s like %q", e, got, want, same[0])
		}
		if got := user.NormalizeEmail(e); got != "ada@example.com" {
			t.Errorf("NormalizeEmail(%q) = %q", e, got)
		}
	}
	for _, other := range []string{"ada@example.org", "ada.lovelace@example.com", "bob@example.com"} {
		if user.EmailStream(other) == want {
			t.Errorf("EmailStream(%q) collides with %q", other, same[0])
		}
	}
	if !strings.HasPrefix(want, "user-email-") || !strings.HasPrefix(want, user.StreamPrefix) || strings.Contains(want, "ada") {
		t.Errorf("reservation stream %q must be user-email-<hash>, without the address in clear", want)
	}
	if user.Stream(userID) == want || user.Stream(userID) != "user-"+userID.String() {
		t.Errorf("Stream(%s) = %q", userID, user.Stream(userID))
	}
}

func TestUpdateProfile(t *testing.T) {
	tests := []struct {
		name        string
		history     []es.Payload
		newName     *string
		newPhone    *string
		want        []es.Payload
		fields      []string
		wantedName  string
		wantedPhone string
	}{
		{"change the name", []es.Payload{registered}, ptr("Ada Lovelace"), nil,
			[]es.Payload{user.ProfileUpdated{Name: "Ada Lovelace", At: now}}, nil, "Ada Lovelace", ""},
		{"add a phone", []es.Payload{registered}, nil, ptr("+62 812-3456-7890"),
			[]es.Payload{user.ProfileUpdated{Name: "Ada", Phone: "+62 812-3456-7890", At: now}}, nil, "Ada", "+62 812-3456-7890"},
		{"change both, trimmed", []es.Payload{registered}, ptr(" Ada L. "), ptr(" 0812345678 "),
			[]es.Payload{user.ProfileUpdated{Name: "Ada L.", Phone: "0812345678", At: now}}, nil, "Ada L.", "0812345678"},
		{"clear the phone", []es.Payload{registered, withPhone}, nil, ptr(""),
			[]es.Payload{user.ProfileUpdated{Name: "Ada", Phone: "", At: now}}, nil, "Ada", ""},
		{"nothing given is a no-op", []es.Payload{registered, withPhone}, nil, nil, nil, nil, "Ada", "+6281234567890"},
		{"the same values are a no-op", []es.Payload{registered, withPhone}, ptr("Ada"), ptr("+6281234567890"), nil, nil, "Ada", "+6281234567890"},
		{"the same values with spaces are a no-op", []es.Payload{registered, withPhone}, ptr("  Ada "), ptr(" +6281234567890"), nil, nil, "Ada", "+6281234567890"},
		{"a blank name is refused", []es.Payload{registered}, ptr("  "), nil, nil, []string{"name"}, "Ada", ""},
		{"a bad phone is refused", []es.Payload{registered}, nil, ptr("call me"), nil, []string{"phone"}, "Ada", ""},
		{"both bad, both named", []es.Payload{registered}, ptr(""), ptr("12"), nil, []string{"name", "phone"}, "Ada", ""},
		{"a good name with a bad phone changes nothing", []es.Payload{registered}, ptr("Ada L."), ptr("12"), nil, []string{"phone"}, "Ada", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := &user.User{}
			s := estest.Given(t, u, tt.history...).When(u.UpdateProfile(tt.newName, tt.newPhone, now))
			if tt.fields == nil {
				s.Then(tt.want...)
			} else {
				var in *fault.Input
				s.ThenError(&in)
				if got := invalidFields(t, in); !slices.Equal(got, tt.fields) {
					t.Errorf("invalid fields = %v, want %v", got, tt.fields)
				}
			}
			if u.Name() != tt.wantedName || u.Phone() != tt.wantedPhone {
				t.Errorf("profile reads %q %q, want %q %q", u.Name(), u.Phone(), tt.wantedName, tt.wantedPhone)
			}
		})
	}
}

func TestPhoneValidation(t *testing.T) {
	tests := []struct {
		phone string
		ok    bool
	}{
		{"", true},
		{"+6281234567890", true},
		{"+62 812 3456 7890", true},
		{"0812-3456-7890", true},
		{"123456", true},              // shortest: 6 digits
		{"+123456789012345", true},    // longest: 15 digits (E.164)
		{"12345", false},              // too few digits
		{"+1234567890123456", false},  // too many digits
		{"+", false},                  // no digits
		{"++6281234567890", false},    // a second plus
		{"62+81234567890", false},     // a plus inside
		{"(021) 1234567", false},      // brackets
		{"+62 812 ABC 7890", false},   // letters
		{"+62\u00a0812345678", false}, // a no-break space
		{"+６２８１２３４５６７", false},        // full-width digits
	}
	for _, tt := range tests {
		t.Run(tt.phone, func(t *testing.T) {
			u := &user.User{}
			s := estest.Given(t, u, registered).When(u.UpdateProfile(nil, &tt.phone, now))
			switch {
			case !tt.ok:
				s.ThenError(new(*fault.Input))
			case tt.phone == "":
				s.Then() // the user had no phone
			default:
				s.Then(user.ProfileUpdated{Name: "Ada", Phone: tt.phone, At: now})
			}
		})
	}
}

func TestChangeRole(t *testing.T) {
	admin := user.RoleChanged{Role: user.Admin, At: registeredAt.Add(time.Hour)}
	tests := []struct {
		name    string
		history []es.Payload
		role    user.Role
		want    []es.Payload
		invalid bool
		final   user.Role
	}{
		{"grant admin", []es.Payload{registered}, user.Admin, []es.Payload{user.RoleChanged{Role: user.Admin, At: now}}, false, user.Admin},
		{"withdraw admin", []es.Payload{registered, admin}, user.Customer, []es.Payload{user.RoleChanged{Role: user.Customer, At: now}}, false, user.Customer},
		{"grant the role held is a no-op", []es.Payload{registered, admin}, user.Admin, nil, false, user.Admin},
		{"customer again is a no-op", []es.Payload{registered}, user.Customer, nil, false, user.Customer},
		{"unknown role", []es.Payload{registered}, "superuser", nil, true, user.Customer},
		{"empty role", []es.Payload{registered, admin}, "", nil, true, user.Admin},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := &user.User{}
			s := estest.Given(t, u, tt.history...).When(u.ChangeRole(tt.role, now))
			if tt.invalid {
				var in *fault.Input
				s.ThenError(&in)
				if got := invalidFields(t, in); !slices.Equal(got, []string{"role"}) {
					t.Errorf("invalid fields = %v, want [role]", got)
				}
			} else {
				s.Then(tt.want...)
			}
			if u.Role() != tt.final {
				t.Errorf("role = %s, want %s", u.Role(), tt.final)
			}
		})
	}
}

func TestStateAfterReplay(t *testing.T) {
	u := &user.User{}
	later := now.Add(time.Hour)
	estest.Given(t, u, registered, withPhone, user.RoleChanged{Role: user.Admin, At: later})
	if u.ID() != userID || u.Email() != "ada@example.com" || u.Name() != "Ada" || u.Phone() != "+6281234567890" ||
		u.Role() != user.Admin || u.PasswordHash() != "$2a$hash" || !u.CreatedAt().Equal(registeredAt) || !u.UpdatedAt().Equal(later) {
		t.Errorf("replayed user reads %s %s %q %q %s created %s updated %s", u.ID(), u.Email(), u.Name(), u.Phone(), u.Role(), u.CreatedAt(), u.UpdatedAt())
	}
	if u.Version() != 2 {
		t.Errorf("version = %d, want 2", u.Version())
	}
	if (&user.User{}).Exists() {
		t.Error("a user replayed from an empty stream exists")
	}
}

func TestStoredTypeNamesNeverChange(t *testing.T) {
	want := map[es.Payload]string{
		user.Registered{}:     "user.registered",
		user.ProfileUpdated{}: "user.profile_updated",
		user.RoleChanged{}:    "user.role_changed",
		user.EmailReserved{}:  "user.email_reserved",
	}
	r := es.NewRegistry()
	user.Register(r)
	for p, name := range want {
		if p.EventType() != name {
			t.Errorf("%T is stored as %q, want %q", p, p.EventType(), name)
		}
		if !r.Known(name) {
			t.Errorf("Register does not register %q", name)
		}
	}
}
