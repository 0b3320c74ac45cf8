#!/bin/sh
# Says what the host lacks to run containers: "docker" when it has no
# Docker, "compose" when it has Docker without Compose, "daemon" when
# the Docker daemon does not answer, nothing when all is there.
if ! command -v docker >/dev/null 2>&1; then echo docker; exit 0; fi
if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null 2>&1; then echo compose; exit 0; fi
if ! docker info >/dev/null 2>&1; then echo daemon; fi
