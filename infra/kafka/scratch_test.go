package kafka

import (
	"context"
	"fmt"
	"testing"
	"time"

	ck "github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

func TestScratch(t *testing.T) {
	brokers := "127.0.0.1:19092"
	topic := fmt.Sprintf("scratch-%d", time.Now().UnixNano())
	ctx := context.Background()
	ad, err := ck.NewAdminClient(&ck.ConfigMap{"bootstrap.servers": brokers})
	if err != nil { t.Fatal(err) }
	res, err := ad.CreateTopics(ctx, []ck.TopicSpecification{{Topic: topic, NumPartitions: 6, ReplicationFactor: 1},{Topic: topic+".log", NumPartitions: 1, ReplicationFactor: 1}})
	t.Log(res, err)
	ad.Close()
	p, err := ck.NewProducer(&ck.ConfigMap{"bootstrap.servers": brokers, "transactional.id": topic, "go.delivery.reports": false, "linger.ms": 5, "retry.backoff.ms": 5, "retry.backoff.max.ms": 100, "debug": "eos"})
	if err != nil { t.Fatal(err) }
	go func() { for e := range p.Events() { t.Log("pev", e) } }()
	start := time.Now()
	if err := p.InitTransactions(ctx); err != nil { t.Fatal(err) }
	t.Log("init", time.Since(start))
	lt := topic+".log"
	for _, n := range []int{1, 1, 1, 1, 1000, 1000, 1000, 1000} {
		start = time.Now()
		p.BeginTransaction()
		for i := 0; i < n; i++ {
			k := []byte(fmt.Sprint(i))
			p.Produce(&ck.Message{TopicPartition: ck.TopicPartition{Topic: &topic, Partition: ck.PartitionAny}, Key: k, Value: make([]byte, 300)}, nil)
			p.Produce(&ck.Message{TopicPartition: ck.TopicPartition{Topic: &lt, Partition: 0}, Key: k, Value: make([]byte, 300)}, nil)
		}
		if err := p.CommitTransaction(ctx); err != nil { t.Fatal(err) }
		t.Log("txn", n, time.Since(start))
	}
	p.Close()
}
