package httpapi

import (
	"math"
	"strconv"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/ticketd/ticketing/commands"
	"github.com/ticketd/ticketing/domain/user"
	"github.com/ticketd/ticketing/readmodels"
)

type registerRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	Name     string `json:"name"`
}

func (s *Server) register(c *fiber.Ctx) error {
	var req registerRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	u, err := s.Users.Commands.Register(ctx, commands.NewMsg(), commands.RegisterUser{
		UserID: uuid.New(), Email: req.Email, Password: req.Password, Name: req.Name, Role: user.Customer,
	})
	if err != nil {
		return err
	}
	c.Location("/profile")
	return c.Status(fiber.StatusCreated).JSON(registeredJSON{ID: u.ID, Email: u.Email, Name: u.Name, Role: string(u.Role)})
}

type loginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

func (s *Server) login(c *fiber.Ctx) error {
	var req loginRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	limits := []struct {
		l   Limiter
		key string
	}{{s.Users.EmailLimiter, user.NormalizeEmail(req.Email)}, {s.Users.IPLimiter, s.clientIP(c)}}
	for _, lim := range limits {
		if ok, wait := lim.l.Allow(lim.key); !ok {
			c.Set(fiber.HeaderRetryAfter, strconv.Itoa(int(math.Ceil(wait.Seconds()))))
			return newError(fiber.StatusTooManyRequests, typeRateLimited, "Too many login attempts", "Wait before trying again.")
		}
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	u, err := s.Users.Commands.Authenticate(ctx, req.Email, req.Password)
	if err != nil {
		return err
	}
	// A successful login clears the account's failures; the address keeps
	// its count, so interleaving logins to one's own account does not buy
	// more guesses at others.
	s.Users.EmailLimiter.Reset(user.NormalizeEmail(req.Email))
	token, ttl, err := s.Users.Tokens.Issue(u.ID, string(u.Role))
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(tokenJSON{AccessToken: token, TokenType: "Bearer", ExpiresIn: int64(ttl.Seconds())})
}

func (s *Server) profile(c *fiber.Ctx) error {
	ctx, cancel := s.ctx(c)
	defer cancel()
	var p readmodels.ProfileView
	err := s.fresh(ctx, func() (err error) {
		p, err = s.Users.Profiles.Profile(ctx, claims(c).UserID)
		return err
	})
	if err != nil {
		return err
	}
	return c.JSON(profileFromView(&p))
}

type profileUpdateRequest struct {
	Name  *string `json:"name"`
	Phone *string `json:"phone"`
}

func (s *Server) updateProfile(c *fiber.Ctx) error {
	var req profileUpdateRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	u, err := s.Users.Commands.UpdateProfile(ctx, commands.NewMsg(), commands.UpdateProfile{UserID: claims(c).UserID, Name: req.Name, Phone: req.Phone})
	if err != nil {
		return err
	}
	return c.JSON(profileFromState(&u))
}
