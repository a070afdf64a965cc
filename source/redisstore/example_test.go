package redisstore_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"log"
	"os"

	"github.com/redis/go-redis/v9"

	"github.com/tokenhttp/tokenhttp/source"
	"github.com/tokenhttp/tokenhttp/source/redisstore"
)

// Every replica of a service shares one token per credential through
// Redis. The key, 32 random bytes the replicas share (here base64 in an
// environment variable), encrypts the tokens at rest. This example needs
// a Redis on localhost:6379, so it has no output to check.
func ExampleNew() {
	key, err := base64.StdEncoding.DecodeString(os.Getenv("TOKEN_STORE_KEY"))
	if err != nil {
		log.Fatal(err)
	}
	client := redis.NewClient(&redis.Options{Addr: "localhost:6379", ContextTimeoutEnabled: true})
	defer client.Close()
	store, err := redisstore.New(client, redisstore.WithKey(key))
	if err != nil {
		log.Fatal(err)
	}

	src, err := source.New(source.Config{
		TokenURL:     "https://auth.example.com/oauth2/token",
		ClientID:     "my-client",
		ClientSecret: os.Getenv("CLIENT_SECRET"),
		Store:        store, // one fetch for the fleet; Redis down: each replica fetches alone
	})
	if err != nil {
		log.Fatal(err)
	}
	tok, err := src.Token(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tok.TokenType)
}
