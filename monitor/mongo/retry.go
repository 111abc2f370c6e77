package mongo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sendhooks/sendhooks"
	"github.com/sendhooks/sendhooks/monitor"
)

// MarkRetry marks the hook with one conditional update, atomic in MongoDB:
// its filter holds the conditions of Hook.CanMarkRetry, so of two monitors
// marking at once one matches and the other does not. The update raises
// the version, so a merge of events that read the hook before it writes
// again from the marked document.
func (s *Store) MarkRetry(ctx context.Context, id string, attempt int, at time.Time) (bool, error) {
	at = at.UTC().Truncate(time.Millisecond)
	filter := bson.D{
		{Key: "_id", Value: id},
		{Key: "status", Value: bson.D{{Key: "$ne", Value: string(sendhooks.StatusRetrying)}}},
		{Key: "$or", Value: bson.A{
			bson.D{{Key: "retryQueued", Value: bson.D{{Key: "$in", Value: bson.A{0, nil}}}}},
			bson.D{{Key: "retryQueuedAt", Value: bson.D{{Key: "$lte", Value: at.Add(-monitor.RetryMarkTTL)}}}},
		}},
	}
	update := bson.D{
		{Key: "$set", Value: bson.D{{Key: "retryQueued", Value: attempt}, {Key: "retryQueuedAt", Value: at}}},
		{Key: "$inc", Value: bson.D{{Key: "version", Value: 1}}},
	}
	res, err := s.hooks.UpdateOne(ctx, filter, update)
	if err != nil {
		return false, fmt.Errorf("mark the retry of hook %q: %w", id, err)
	}
	if res.MatchedCount == 1 {
		return true, nil
	}
	return false, s.exists(ctx, id)
}

// ClearRetry removes the mark of attempt, if it is still there.
func (s *Store) ClearRetry(ctx context.Context, id string, attempt int) error {
	_, err := s.hooks.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: id}, {Key: "retryQueued", Value: attempt}},
		bson.D{
			{Key: "$unset", Value: bson.D{{Key: "retryQueued", Value: ""}, {Key: "retryQueuedAt", Value: ""}}},
			{Key: "$inc", Value: bson.D{{Key: "version", Value: 1}}},
		})
	if err != nil {
		return fmt.Errorf("clear the retry mark of hook %q: %w", id, err)
	}
	return nil
}

// exists reports ErrNotFound when no hook has the id.
func (s *Store) exists(ctx context.Context, id string) error {
	err := s.hooks.FindOne(ctx, bson.D{{Key: "_id", Value: id}}, options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}})).Err()
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return fmt.Errorf("hook %q: %w", id, monitor.ErrNotFound)
	case err != nil:
		return fmt.Errorf("find hook %q: %w", id, err)
	}
	return nil
}
