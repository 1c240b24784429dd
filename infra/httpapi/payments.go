package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/ticketd/ticketing/commands"
	"github.com/ticketd/ticketing/domain/payment"
	"github.com/ticketd/ticketing/infra/payment/webhook"
	"github.com/ticketd/ticketing/readmodels"
)

type processPaymentRequest struct {
	BookingID    string `json:"booking_id"`
	PaymentToken string `json:"payment_token"`
}

func (s *Server) processPayment(c *fiber.Ctx) error {
	key, err := idempotencyKey(c)
	if err != nil {
		return err
	}
	var req processPaymentRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	var f fields
	bookingID := f.uuidField("booking_id", req.BookingID)
	if req.PaymentToken == "" || len(req.PaymentToken) > 255 {
		f.add("payment_token", "is required, at most 255 characters")
	}
	if err := f.err(); err != nil {
		return err
	}
	userID := claims(c).UserID
	msg := commands.Msg{ID: uuid.New(), CorrelationID: bookingID}
	if key != "" {
		// The same key finds the attempt it started, even after a crash.
		msg.ID = uuid.NewSHA1(userID, []byte("payment:"+key))
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	p, err := s.Payments.Commands.Process(ctx, msg, commands.ProcessPayment{BookingID: bookingID, UserID: userID, Token: req.PaymentToken})
	if err != nil {
		return err
	}
	out := paymentFromState(&p)
	return accepted(c, "/payment/status/"+p.ID.String(), &out)
}

type notificationRequest struct {
	PaymentID     string `json:"payment_id"`
	Status        string `json:"status"`
	GatewayRef    string `json:"gateway_ref"`
	FailureReason string `json:"failure_reason"`
}

// paymentWebhook takes the provider's verdict. The signature is checked
// over the raw body before anything is parsed, and a bad one changes
// nothing.
func (s *Server) paymentWebhook(c *fiber.Ctx) error {
	err := webhook.Verify(s.Payments.WebhookSecret, c.Get(webhook.SignatureHeader), c.Get(webhook.TimestampHeader), c.Body(), s.Now())
	if err != nil {
		s.log.Warn("payment notification refused", "err", err, "ip", s.clientIP(c))
		return unauthorized("The notification's signature or timestamp is missing or wrong.")
	}
	var req notificationRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	var f fields
	id := f.uuidField("payment_id", req.PaymentID)
	if req.Status != "succeeded" && req.Status != "failed" {
		f.add("status", "must be succeeded or failed")
	}
	if err := f.err(); err != nil {
		return err
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	p, err := s.Payments.Commands.Settle(ctx, commands.Msg{ID: uuid.New(), CorrelationID: id}, commands.SettlePayment{
		PaymentID: id, Succeeded: req.Status == "succeeded", GatewayRef: req.GatewayRef, FailureReason: req.FailureReason,
	})
	if err != nil {
		return err
	}
	out := paymentFromState(&p)
	return sendJSON(c, &out)
}

func (s *Server) readPayment(c *fiber.Ctx, ctx context.Context, id uuid.UUID) (readmodels.PaymentView, error) {
	var p readmodels.PaymentView
	err := s.fresh(ctx, func() (err error) {
		p, err = s.Payments.Reads.Payment(ctx, id)
		return err
	})
	if err != nil {
		return p, err
	}
	if p.UserID != claims(c).UserID && !isAdmin(c) {
		return p, notFound("No payment has that id.")
	}
	return p, nil
}

func (s *Server) getPayment(c *fiber.Ctx) error {
	id, err := pathID(c, "payment")
	if err != nil {
		return err
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	p, err := s.readPayment(c, ctx, id)
	if err != nil {
		return err
	}
	out := paymentFromView(&p)
	return sendJSON(c, &out)
}

// streamEnds reports whether a payment in status st will not change in a
// way the payer waits for: the stream ends after it.
func streamEnds(st payment.Status) bool {
	return st == payment.Succeeded || st == payment.Failed || st == payment.Refunded
}

// streamPayment sends the payment's state at once, then one `status`
// message per change, pushed by the projection, and ends after a final
// status. Comments keep idle connections open through proxies.
func (s *Server) streamPayment(c *fiber.Ctx) error {
	id, err := pathID(c, "payment")
	if err != nil {
		return err
	}
	ctx, cancel := s.ctx(c)
	current, err := s.readPayment(c, ctx, id)
	cancel()
	if err != nil {
		return err
	}
	// Subscribe before streaming so that no change between the read and
	// the subscription is missed; stale states are skipped by position.
	watchCtx, stop := context.WithCancel(context.Background())
	updates, err := s.Payments.Reads.Watch(watchCtx, id)
	if err != nil {
		stop()
		return err
	}
	c.Set(fiber.HeaderContentType, "text/event-stream")
	c.Set(fiber.HeaderCacheControl, "no-cache")
	c.Set(fiber.HeaderConnection, "keep-alive")
	c.Set("X-Accel-Buffering", "no")
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		defer stop()
		send := func(p *readmodels.PaymentView) error {
			data, _ := json.Marshal(paymentFromView(p))
			if _, err := fmt.Fprintf(w, "id: %d\nevent: status\ndata: %s\n\n", p.Position, data); err != nil {
				return err
			}
			return w.Flush()
		}
		if send(&current) != nil || streamEnds(current.Status) {
			return
		}
		last := current.Position
		heartbeat := time.NewTicker(15 * time.Second)
		defer heartbeat.Stop()
		for {
			select {
			case p, ok := <-updates:
				if !ok {
					return
				}
				if p.Position <= last {
					continue
				}
				last = p.Position
				if send(&p) != nil || streamEnds(p.Status) {
					return
				}
			case <-heartbeat.C:
				if _, err := w.WriteString(": keep-alive\n\n"); err != nil || w.Flush() != nil {
					return
				}
			}
		}
	})
	return nil
}
