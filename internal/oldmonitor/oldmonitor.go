// Package oldmonitor writes test data exactly as the older monitor
// (sendhooks-monitoring, Node and Mongoose, released 2024) stored it in
// MongoDB, so that tests start from an old database. Its Mongoose model:
//
//	id: String (the status-stream entry id), url: String,
//	status: "success" | "failed", created: Date, delivered: Date,
//	error: String, externalId: String
//
// and its listener created one document per status event with
// error: delivery_error or null and delivered: a Date or null; Mongoose
// added _id (an ObjectId made when the document was) and __v: 0 (an int32).
package oldmonitor

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Doc is one document of the older monitor, as the driver writes it.
type Doc = bson.D

// Docs makes the documents of jobs webhooks whose first was created at
// from, one every spread: each job made 1 to 3 status events (failed ones
// and then a success, or failures only), each its own document sharing
// the job's externalId, created 2 s apart. Every 7th job is created in
// the same millisecond as the one before (ties broken by _id). The
// ObjectIds rise with created, as Mongoose made them.
func Docs(jobs int, from time.Time, spread time.Duration) []Doc {
	var out []Doc
	for j := range jobs {
		created := from.Add(time.Duration(j) * spread)
		if j%7 == 6 {
			created = from.Add(time.Duration(j-1) * spread)
		}
		events := 1 + j%3
		succeeds := j%4 != 3
		for e := range events {
			at := created.Add(time.Duration(e) * 2 * time.Second).Truncate(time.Millisecond).UTC()
			status, errText, delivered := "failed", any(fmt.Sprintf("Post \"https://old-%d.example/Hooks\": receiver answered 500", j%5)), any(nil)
			if e == events-1 && succeeds {
				status, errText, delivered = "success", nil, at.Add(300*time.Millisecond)
			}
			out = append(out, bson.D{
				{Key: "_id", Value: objectID(at, len(out))},
				{Key: "id", Value: fmt.Sprintf("%d-%d", at.UnixMilli(), e)},
				{Key: "url", Value: fmt.Sprintf("https://old-%d.example/Hooks/%d", j%5, j)},
				{Key: "status", Value: status},
				{Key: "created", Value: at},
				{Key: "error", Value: errText},
				{Key: "delivered", Value: delivered},
				{Key: "externalId", Value: fmt.Sprintf("legacy-order-%04d", j)},
				{Key: "__v", Value: int32(0)},
			})
		}
	}
	return out
}

// objectID is an ObjectId as a client makes it at t: its seconds, then
// five bytes of the process and a counter.
func objectID(t time.Time, n int) bson.ObjectID {
	var id bson.ObjectID
	binary.BigEndian.PutUint32(id[0:4], uint32(t.Unix()))
	copy(id[4:9], []byte{0x66, 0x5a, 0x1f, 0x3c, 0x9e})
	id[9], id[10], id[11] = byte(n>>16), byte(n>>8), byte(n)
	return id
}

// Insert writes the documents into the collection with the MongoDB
// driver, in batches, as the older monitor would have.
func Insert(ctx context.Context, coll *mongo.Collection, docs []Doc) error {
	for len(docs) > 0 {
		n := min(len(docs), 500)
		batch := make([]any, n)
		for i := range batch {
			batch[i] = docs[i]
		}
		if _, err := coll.InsertMany(ctx, batch, options.InsertMany().SetOrdered(true)); err != nil {
			return fmt.Errorf("insert %d documents of the older monitor: %w", n, err)
		}
		docs = docs[n:]
	}
	return nil
}
