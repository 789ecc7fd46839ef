# The REST API curl examples of the seed's README (../shared/seed/README.seed.md),
# as written there. The test runs each block with the server's URL for
# http://localhost:8000 and an Authorization header added after "curl".

# approve-cleanup
curl -X POST http://localhost:8000/api/v1/approvals/cleanup-existing \
  -H "Content-Type: application/json" \
  -d '{
    "approved_by": "admin",
    "reason": "Planned maintenance", 
    "acknowledge_risks": true
  }'

# cluster-status
curl http://localhost:8000/api/v1/cluster/status | jq

# execute-docker-installation
curl -X POST http://localhost:8000/api/v1/checkpoints/docker-installation \
  -H "Content-Type: application/json" \
  -d '{"approve": true}'
