"""What ``authmesh demo`` prints: where everything listens and the walkthrough.

The walkthrough is also the README's; a test runs the README's copy verbatim
against a live demo and checks that it equals :data:`WALKTHROUGH`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

__all__ = ["WALKTHROUGH", "banner"]

WALKTHROUGH = r"""# 0. Load the demo's URLs and credentials into the shell
source data/demo.env
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

# 1. Log in as alice (password grant): an access token and a refresh token
LOGIN=$(curl -s -d grant_type=password -d client_id=$DEMO_CLIENT_ID \
  -d username=$USER_USERNAME -d password=$USER_PASSWORD $AUTHMESH_ISSUER/oauth/token)
TOKEN=$(echo "$LOGIN" | json '["access_token"]')
REFRESH=$(echo "$LOGIN" | json '["refresh_token"]')
echo "$LOGIN" | json '["scope"]'

# 2. REST: create an order (orders asks catalog for the price with its own service token,
#    and calls it for alice with her token exchanged: catalog sees "alice via orders-svc")
curl -s -w '\n' -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  -d '{"product_id": "p1", "quantity": 2}' $ORDERS_URL/orders
curl -s -w '\n' -H "Authorization: Bearer $TOKEN" $ORDERS_URL/orders

# 3. GraphQL: any signed-in user may query; the mutation needs the admin role
curl -s -w '\n' -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  -d '{"query": "{ products { id name price } }"}' $CATALOG_URL/graphql
curl -s -w '\n' -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  -d '{"query": "mutation { addProduct(name: \"Lamp\", price: 30.0) { id } }"}' \
  $CATALOG_URL/graphql

# 4. Inspect the token: header, claims, and the verdict against the published keys
.venv/bin/authmesh token decode $TOKEN --jwks $AUTHMESH_ISSUER/.well-known/jwks.json \
  --issuer $AUTHMESH_ISSUER --audience orders

# 5. Refresh: a new access token and a rotated refresh token
REFRESHED=$(curl -s -d grant_type=refresh_token -d client_id=$DEMO_CLIENT_ID \
  -d refresh_token=$REFRESH $AUTHMESH_ISSUER/oauth/token)
TOKEN=$(echo "$REFRESHED" | json '["access_token"]')
curl -s -o /dev/null -w '%{http_code}\n' -H "Authorization: Bearer $TOKEN" $ORDERS_URL/orders

# 6. As admin, block alice: within a second her calls fail in both services (401)
ADMIN=$(curl -s -d grant_type=password -d client_id=$DEMO_CLIENT_ID \
  -d username=$ADMIN_USERNAME -d password=$ADMIN_PASSWORD $AUTHMESH_ISSUER/oauth/token \
  | json '["access_token"]')
curl -s -w '\n' -X POST -H "Authorization: Bearer $ADMIN" \
  $AUTHMESH_ISSUER/admin/users/alice/block
sleep 1
curl -s -w '\n%{http_code}\n' -H "Authorization: Bearer $TOKEN" $ORDERS_URL/orders
curl -s -o /dev/null -w '%{http_code}\n' -H "Authorization: Bearer $TOKEN" \
  -H 'Content-Type: application/json' -d '{"query": "{ products { id } }"}' $CATALOG_URL/graphql

# 7. Unblock her; she changes her password: every session ends, this token too (401)
curl -s -w '\n' -X POST -H "Authorization: Bearer $ADMIN" \
  $AUTHMESH_ISSUER/admin/users/alice/unblock
TOKEN=$(curl -s -d grant_type=password -d client_id=$DEMO_CLIENT_ID \
  -d username=$USER_USERNAME -d password=$USER_PASSWORD $AUTHMESH_ISSUER/oauth/token \
  | json '["access_token"]')
curl -s -o /dev/null -w '%{http_code}\n' -H "Authorization: Bearer $TOKEN" \
  -H 'Content-Type: application/json' \
  -d "{\"current_password\": \"$USER_PASSWORD\", \"new_password\": \"$USER_PASSWORD-2\"}" \
  $AUTHMESH_ISSUER/account/password
sleep 1
curl -s -o /dev/null -w '%{http_code}\n' -H "Authorization: Bearer $TOKEN" $ORDERS_URL/orders

# 8. She logs in with the new password and sets the old one back (so this runs again)
TOKEN=$(curl -s -d grant_type=password -d client_id=$DEMO_CLIENT_ID \
  -d username=$USER_USERNAME -d password=$USER_PASSWORD-2 $AUTHMESH_ISSUER/oauth/token \
  | json '["access_token"]')
curl -s -o /dev/null -w '%{http_code}\n' -H "Authorization: Bearer $TOKEN" \
  -H 'Content-Type: application/json' \
  -d "{\"current_password\": \"$USER_PASSWORD-2\", \"new_password\": \"$USER_PASSWORD\"}" \
  $AUTHMESH_ISSUER/account/password
"""


def banner(facts: Mapping[str, str], env_path: Path, *, first_start: bool) -> str:
    """The text printed once everything answers."""
    lines = [
        "",
        "authmesh demo is running (Ctrl-C stops it)",
        f"  web app           {facts['WEBAPP_URL']}   <- open this and sign in as alice",
        f"  account page      {facts['AUTHMESH_ISSUER']}/account   (any user)",
        f"  admin console     {facts['AUTHMESH_ISSUER']}/admin   (sign in as admin)",
        f"  auth server       {facts['AUTHMESH_ISSUER']}   (docs: {facts['AUTHMESH_ISSUER']}/docs)",
        f"  orders (REST)     {facts['ORDERS_URL']}/orders",
        f"  catalog (GraphQL) {facts['CATALOG_URL']}/graphql",
        f"  facts for scripts {env_path}",
        "",
    ]
    if first_start:
        lines += [
            "Demo accounts (shown once; also in demo.env):",
            f"  admin  {facts['ADMIN_USERNAME']} / {facts['ADMIN_PASSWORD']}",
            f"  user   {facts['USER_USERNAME']} / {facts['USER_PASSWORD']}",
            "",
        ]
    else:
        lines += ["Demo accounts: as on first start (see demo.env).", ""]
    lines += ["Walkthrough (copy-paste into a shell in this folder):", "", WALKTHROUGH]
    return "\n".join(lines)
