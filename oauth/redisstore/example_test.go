package redisstore_test

import (
	"context"
	"log"
	"net/http"

	"github.com/redis/go-redis/v9"

	"github.com/linetoken/linetoken/oauth"
	"github.com/linetoken/linetoken/oauth/redisstore"
)

// Every process of a fleet shares one token through Redis: one of them
// issues it, the others read it, and one of them replaces it before it
// expires. (Not run: it needs LINE credentials and a Redis server.)
func ExampleNew() {
	cfg, err := oauth.ConfigFromEnv() // LINE_CHANNEL_ID, LINE_PRIVATE_KEY, ...
	if err != nil {
		log.Fatal(err)
	}
	client, err := oauth.NewClient(cfg)
	if err != nil {
		log.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: "redis.internal:6379", Password: "..."})
	defer rdb.Close()

	ts, err := oauth.NewTokenSource(client, oauth.TokenSourceOptions{
		Store: redisstore.New(rdb, redisstore.WithPrefix("myapp:")),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer ts.Close()

	tok, err := ts.Token(context.Background())
	if err != nil {
		log.Fatal(err) // e.g. "... redisstore: redis unreachable at redis.internal:6379 ..."
	}
	req, _ := http.NewRequest(http.MethodGet, "https://api.line.me/v2/bot/info", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	_ = req
}
