"""Operations on organizations, tokens, roles and mappings, shared by every adapter."""
