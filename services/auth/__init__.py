"""Auth service: accounts, sessions, refresh-token rotation, OTP password reset, signing keys (JWKS).

Decisions where DESIGN.md is silent:
- Emails are stored lower-cased (trimmed), which makes uniqueness and login case-insensitive.
- A role change or a block ends every session of that user (they sign in again), so a demoted
  admin's token cannot outlive the change.
- Refresh-token reuse is strict: a second use of a rotated token, even a racing duplicate,
  ends the whole session.
- OTP emails are sent in the background so forgot-password answers in the same time whether
  or not the account exists.
"""
