// Package deploy holds no code, only the tests of the deployment files at
// the repository's root: docker-compose.yaml (loaded with the compose-spec
// loader, since no Docker engine runs in CI), the Dockerfiles and
// .dockerignore, .env.example and config.example.json. See docs/deploy.md.
package deploy
