package chtest

import (
	"fmt"
	"html"
	"os"
	"path/filepath"
)

// configXML is the whole server configuration: loopback only, UTC, small
// caches (tests share a 2-core machine), no system log tables, no
// interserver port, and one password-less default user restricted to
// loopback. Everything lives under the server's temporary directory.
const configXML = `<?xml version="1.0"?>
<yandex>
  <logger>
    <level>warning</level>
    <log>%[1]s/log/server.log</log>
    <errorlog>%[1]s/log/server.err.log</errorlog>
    <size>10M</size>
    <count>1</count>
  </logger>
  <listen_host>127.0.0.1</listen_host>
  <tcp_port>%[2]d</tcp_port>
  <http_port>%[3]d</http_port>
  <path>%[1]s/data/</path>
  <tmp_path>%[1]s/tmp/</tmp_path>
  <user_files_path>%[1]s/user_files/</user_files_path>
  <format_schema_path>%[1]s/format_schemas/</format_schema_path>
  <timezone>%[4]s</timezone>
  <mark_cache_size>268435456</mark_cache_size>
  <uncompressed_cache_size>268435456</uncompressed_cache_size>
  <max_concurrent_queries>100</max_concurrent_queries>
  <max_connections>1024</max_connections>
  <keep_alive_timeout>3</keep_alive_timeout>
  <mlock_executable>false</mlock_executable>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <users_config>%[1]s/users.xml</users_config>
</yandex>
`

const usersXML = `<?xml version="1.0"?>
<yandex>
  <profiles>
    <default>
      <max_memory_usage>2000000000</max_memory_usage>
    </default>
    <reader>
      <max_memory_usage>2000000000</max_memory_usage>
      <readonly>2</readonly>
    </reader>
  </profiles>
  <users>
    <default>
      <password>%s</password>
      <networks>
        <ip>127.0.0.1</ip>
        <ip>::1</ip>
      </networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
    <reader>
      <password></password>
      <networks>
        <ip>127.0.0.1</ip>
        <ip>::1</ip>
      </networks>
      <profile>reader</profile>
      <quota>default</quota>
      <allow_databases>
        <database>questline</database>
      </allow_databases>
    </reader>
  </users>
  <quotas>
    <default></default>
  </quotas>
</yandex>
`

// writeConfig writes config.xml and users.xml into dir for the given ports
// and returns the path of config.xml.
func writeConfig(dir string, tcpPort, httpPort int, timezone, password string) (string, error) {
	for _, sub := range []string{"log", "data", "tmp", "user_files", "format_schemas"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return "", err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "users.xml"), fmt.Appendf(nil, usersXML, html.EscapeString(password)), 0o644); err != nil {
		return "", err
	}
	cfg := filepath.Join(dir, "config.xml")
	return cfg, os.WriteFile(cfg, fmt.Appendf(nil, configXML, dir, tcpPort, httpPort, timezone), 0o644)
}
