package main

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ticketd/ticketing/projections"
)

// busMetrics counts what the process managers do: how each reaction went
// (the saga's outcomes), how long it took, and what was given up on.
type busMetrics struct {
	handled    *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	dead       *prometheus.CounterVec
	checkpoint *prometheus.GaugeVec
}

func newBusMetrics(reg *prometheus.Registry) *busMetrics {
	m := &busMetrics{
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ticketd_reactions_total", Help: "Records handled by process managers, by subscriber, record type and outcome.",
		}, []string{"subscriber", "type", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ticketd_reaction_duration_seconds", Help: "Time to handle one record, by subscriber.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"subscriber"}),
		dead: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ticketd_dead_letters_total", Help: "Records given up on after bounded retries.",
		}, []string{"subscriber", "type"}),
		checkpoint: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ticketd_subscriber_checkpoint", Help: "Last saved checkpoint (log position) of each subscriber.",
		}, []string{"subscriber"}),
	}
	reg.MustRegister(m.handled, m.latency, m.dead, m.checkpoint)
	return m
}

func (m *busMetrics) Handled(sub, typ string, took time.Duration, err error) {
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	m.handled.WithLabelValues(sub, typ, outcome).Inc()
	m.latency.WithLabelValues(sub).Observe(took.Seconds())
}

func (m *busMetrics) DeadLettered(sub, typ string) { m.dead.WithLabelValues(sub, typ).Inc() }

func (m *busMetrics) Checkpointed(sub string, pos uint64) {
	m.checkpoint.WithLabelValues(sub).Set(float64(pos))
}

// registerLag exposes how far a projection may trail the log. A projection
// reads only some records, so its checkpoint stops at the last of those:
// the figure is an upper bound that falls to 0 when the projection applies
// a record at the head, and stays up while only others' records are
// written. Alert on it growing, not on it being above 0.
func registerLag(reg *prometheus.Registry, p *projections.Projector, head func(context.Context) (uint64, error)) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "ticketd_projection_lag",
		Help:        "Upper bound of the log positions a projection trails the head (records it does not read count too).",
		ConstLabels: prometheus.Labels{"projection": p.Name()},
	}, func() float64 {
		h, err := head(context.Background())
		if err != nil {
			return -1
		}
		return float64(h) - float64(p.Checkpoint())
	}))
}
