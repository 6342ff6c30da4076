#!/usr/bin/env bash
# Regenerates rpc/gen/ from rpc/proto/ with buf and protoc-gen-es, both from npm (pinned).
set -euo pipefail
cd "$(dirname "$0")/.."
npx -y -p @bufbuild/buf@1.75.0 -p @bufbuild/protoc-gen-es@2.17.0 buf generate
