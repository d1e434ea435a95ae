# Sourced by quickstart.sh (and its test): ch_from_dsn DSN DIR sets
# ch_host, ch_port, ch_db and ch_auth (clickhouse-client's arguments for
# the user and password) from a DSN clickhouse://[user[:password]@]host[:port][/database]
# (port 9000 and database questline when not given, as questline's own
# default), and returns 1 when it cannot read one. The user and password
# go in DIR/clickhouse-client.xml, readable by us only, not on a command
# line every user sees in ps (helper-37, session 14).
ch_from_dsn() {
  local dsn=$1 dir=$2
  # The user info runs to the last @, as Go's url.Parse (under
  # clickhouse-go's ParseDSN) reads it: a password may hold a raw @ or :.
  [[ $dsn =~ ^clickhouse://(([^:/?#]*)(:([^/?#]*))?@)?(\[[^]/]+\]|[^/:?@]+)(:([0-9]+))?(/([A-Za-z0-9_]+))? ]] || return 1
  ch_host=${BASH_REMATCH[5]} ch_port=${BASH_REMATCH[7]:-9000} ch_db=${BASH_REMATCH[9]:-questline}
  ch_host=${ch_host#[} ch_host=${ch_host%]}
  ch_auth=()
  local user pass
  # Percent-decoded, as questline's DSN parser reads them (a password's
  # / and % must be encoded in a DSN; @ and : may be).
  user=$(ch_unescape "${BASH_REMATCH[2]}") pass=$(ch_unescape "${BASH_REMATCH[4]}")
  if [[ -n $user$pass ]]; then
    local cfg=$dir/clickhouse-client.xml
    (
      umask 077
      {
        printf '<config>'
        if [[ -n $user ]]; then printf '<user>%s</user>' "$(ch_xml "$user")"; fi
        if [[ -n $pass ]]; then printf '<password>%s</password>' "$(ch_xml "$pass")"; fi
        printf '</config>\n'
      } >"$cfg"
    )
    ch_auth=(--config-file "$cfg")
  fi
}

# ch_unescape percent-decodes a DSN's user or password (backslashes
# doubled first: printf %b would read them as escapes). A password ending
# in newlines loses them (command substitution).
ch_unescape() { local s=${1//\\/\\\\}; s=${s//%/\\x}; printf '%b' "$s"; }

# ch_xml escapes XML's special characters (the replacements are quoted:
# bash 5.2 reads a bare & there as the match).
ch_xml() { local s=${1//&/"&amp;"}; s=${s//</"&lt;"}; s=${s//>/"&gt;"}; printf '%s' "$s"; }
