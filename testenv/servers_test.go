package testenv

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"net/url"
	"testing"
	"time"
)

// These tests talk to the servers started by scripts/testenv.sh at the
// protocol level (stdlib only), so a wrong port or a half-started server is
// caught here rather than as a confusing client error elsewhere. Without the
// servers they skip locally and fail in CI, like every integration test.

func TestRedisAnswersPing(t *testing.T) {
	u, err := url.Parse(testServers.Redis(t))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", u.Host, DialTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, "*1\r\n$4\r\nPING\r\n"); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if line != "+PONG\r\n" {
		t.Fatalf("PING answered %q, want +PONG", line)
	}
}

// TestKafkaAnswersApiVersions sends a raw ApiVersions v0 request (the
// request every Kafka client sends first) and checks the broker lists the
// Produce and Fetch APIs.
func TestKafkaAnswersApiVersions(t *testing.T) {
	brokers := testServers.Kafka(t)
	addrs, err := brokerAddrs(brokers)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", addrs[0], DialTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))

	const correlationID = 0x7e57
	clientID := "ticketd-testenv"
	req := binary.BigEndian.AppendUint16(nil, 18) // api key: ApiVersions
	req = binary.BigEndian.AppendUint16(req, 0)   // api version 0
	req = binary.BigEndian.AppendUint32(req, correlationID)
	req = binary.BigEndian.AppendUint16(req, uint16(len(clientID)))
	req = append(req, clientID...)
	frame := binary.BigEndian.AppendUint32(nil, uint32(len(req)))
	if _, err := conn.Write(append(frame, req...)); err != nil {
		t.Fatal(err)
	}

	var size uint32
	if err := binary.Read(conn, binary.BigEndian, &size); err != nil {
		t.Fatalf("reading response size: %v", err)
	}
	if size < 10 || size > 1<<20 {
		t.Fatalf("implausible response size %d", size)
	}
	resp := make([]byte, size)
	if _, err := io.ReadFull(conn, resp); err != nil {
		t.Fatal(err)
	}
	if got := binary.BigEndian.Uint32(resp[0:4]); got != correlationID {
		t.Fatalf("correlation id %#x, want %#x", got, correlationID)
	}
	if code := int16(binary.BigEndian.Uint16(resp[4:6])); code != 0 {
		t.Fatalf("ApiVersions error code %d", code)
	}
	n := int(binary.BigEndian.Uint32(resp[6:10]))
	if n <= 0 || 10+6*n > len(resp) {
		t.Fatalf("bad api_keys count %d for %d bytes", n, len(resp))
	}
	keys := map[uint16]bool{}
	for i := 0; i < n; i++ {
		keys[binary.BigEndian.Uint16(resp[10+6*i:])] = true
	}
	if !keys[0] || !keys[1] {
		t.Fatalf("broker does not list Produce(0) and Fetch(1) among %d APIs", n)
	}
	t.Logf("broker %s supports %d APIs", addrs[0], n)
}
