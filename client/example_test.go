package client_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"

	"github.com/redis/go-redis/v9"

	"github.com/sendhooks/sendhooks"
	"github.com/sendhooks/sendhooks/client"
)

// Send needs a Redis server, so this example is compiled but not run by
// go test (it has no Output comment); TestSendWritesOneEntryWithTheJobJSON
// runs the same calls against a real redis-server.
func ExampleClient_Send() {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close()

	c := client.New(rdb) // writes to the "hooks" stream
	id, err := c.Send(context.Background(), sendhooks.Job{
		URL:        "http://127.0.0.1:8080/webhooks",
		WebhookID:  "order-42",
		Data:       json.RawMessage(`{"order":42,"status":"paid"}`),
		SecretHash: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
	})
	if sendhooks.IsBadJob(err) {
		log.Fatalf("the engine would refuse this job: %v", err)
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("queued as", id)
}

// Encode shows the exact document Send writes into the entry's data field.
func ExampleEncode() {
	doc, err := client.Encode(sendhooks.Job{
		URL:       "http://127.0.0.1:8080/webhooks",
		WebhookID: "order-42",
		Data:      json.RawMessage(`{"order":42}`),
		MetaData:  json.RawMessage(`{"tenant":7}`),
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(doc))

	_, err = client.Encode(sendhooks.Job{URL: "ftp://127.0.0.1/x"})
	fmt.Println(err, sendhooks.IsBadJob(err))
	// Output:
	// {"url":"http://127.0.0.1:8080/webhooks","webhookId":"order-42","data":{"order":42},"metaData":{"tenant":7}}
	// bad job: the url "ftp://127.0.0.1/x" is not http or https true
}
