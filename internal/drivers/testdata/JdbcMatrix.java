// The driver matrix for pgJDBC (Debian's libpostgresql-jdbc-java), through
// Waypoint. Java runs this single source file directly:
//
//   java -cp /usr/share/java/postgresql.jar JdbcMatrix.java
//
// Run by internal/drivers (TestDriverMatrix) with WP_HOST, WP_PORT (listener
// with TLS off), WP_TLS_PORT (TLS optional), WP_DATABASE and WP_USER set.
// Prints a header line, then one JSON line per feature:
// {"feature": ..., "ok": true|false, "detail": ...}.
//
// How pgJDBC does each feature:
//   simple           preferQueryMode=simple: the simple protocol
//   extended_text    a PreparedStatement with setString parameters; below
//                    prepareThreshold results are text
//   extended_binary  setBytes (always sent binary) and prepareThreshold=-1
//                    (binary results from the first execution); the result
//                    format is read from the ResultSet's fields
//   COPY             PGConnection.getCopyAPI()
//   cancel           Statement.cancel() from another thread (a
//                    CancelRequest with the key from BackendKeyData)
//   notify pid       PGNotification.getPID() vs PGConnection.getBackendPID()
//   ParameterStatus  PGConnection.getParameterStatus()
//   preset           the URL parameter options=-c%20waypoint_presets=readonly
//                    (pgJDBC sends only the startup parameters it knows)
//   TLS              sslmode=prefer/require; TLS use from the connection's
//                    socket (read by reflection: pgJDBC has no API for it)

import java.io.StringReader;
import java.io.StringWriter;
import java.lang.reflect.Field;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import javax.net.ssl.SSLSocket;
import org.postgresql.PGConnection;
import org.postgresql.PGNotification;
import org.postgresql.copy.CopyManager;
import org.postgresql.core.BaseConnection;
import org.postgresql.core.QueryExecutorBase;
import org.postgresql.jdbc.PgResultSet;
import org.postgresql.util.DriverInfo;

public class JdbcMatrix {
  static final String HOST = System.getenv("WP_HOST");
  static final String PORT = System.getenv("WP_PORT");
  static final String TLS_PORT = System.getenv("WP_TLS_PORT");
  static final String DATABASE = System.getenv("WP_DATABASE");
  static final String USER = System.getenv("WP_USER");
  static final String CHANNEL = "wp_matrix_jdbc";
  // Bounds that tell a hang from a slow machine (CI runs the matrix next to
  // the rest of the suite, under the race detector): a cancel must end
  // pg_sleep(30) well before its 30 s, a refused connection must not wait
  // for the connect timeout, notifications get a generous wait, and no
  // socket read waits longer than SOCKET_TIMEOUT seconds.
  static final double CANCEL_LIMIT = 20, REFUSE_LIMIT = 15;
  static final int NOTIFY_WAIT_MS = 30_000, SOCKET_TIMEOUT = 180;

  /** connect opens a connection to port with extra URL parameters (already encoded). */
  static Connection connect(String port, String params) throws SQLException {
    String url = "jdbc:postgresql://" + HOST + ":" + port + "/" + DATABASE
        + "?user=" + USER + "&connectTimeout=20&socketTimeout=" + SOCKET_TIMEOUT
        + (params.contains("sslmode=") ? "" : "&sslmode=disable")
        + (params.isEmpty() ? "" : "&" + params);
    return DriverManager.getConnection(url);
  }

  static Connection connect(String params) throws SQLException {
    return connect(PORT, params);
  }

  static void expect(boolean cond, String what) {
    if (!cond) throw new AssertionError(what);
  }

  static Object one(Connection c, String sql) throws SQLException {
    try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery(sql)) {
      rs.next();
      return rs.getObject(1);
    }
  }

  static void exec(Connection c, String sql) throws SQLException {
    try (Statement st = c.createStatement()) {
      st.execute(sql);
    }
  }

  static String sqlstate(Callable<?> fn) throws Exception {
    try {
      fn.call();
    } catch (SQLException e) {
      return e.getSQLState();
    }
    throw new AssertionError("no error");
  }

  static String simple() throws Exception {
    try (Connection c = connect("preferQueryMode=simple"); Statement st = c.createStatement()) {
      expect(st.execute("SELECT 1; SELECT 'two'"), "no result set");
      ResultSet rs = st.getResultSet();
      rs.next();
      int first = rs.getInt(1);
      expect(st.getMoreResults(), "no second result set");
      rs = st.getResultSet();
      rs.next();
      String second = rs.getString(1);
      expect(first == 1 && second.equals("two"), "got " + first + ", " + second);
      return "preferQueryMode=simple, 'SELECT 1; SELECT 'two'': two result sets";
    }
  }

  static int[] formats(ResultSet rs) throws Exception {
    Field f = PgResultSet.class.getDeclaredField("fields");
    f.setAccessible(true);
    org.postgresql.core.Field[] fields = (org.postgresql.core.Field[]) f.get(rs.unwrap(PgResultSet.class));
    int[] out = new int[fields.length];
    for (int i = 0; i < fields.length; i++) out[i] = fields[i].getFormat();
    return out;
  }

  static String extendedText() throws Exception {
    try (Connection c = connect("");
        PreparedStatement ps = c.prepareStatement("SELECT ?::int + 1, ?::text || '!'")) {
      ps.setString(1, "41");
      ps.setString(2, "héllo");
      try (ResultSet rs = ps.executeQuery()) {
        rs.next();
        expect(rs.getInt(1) == 42 && rs.getString(2).equals("héllo!"), "got " + rs.getInt(1) + ", " + rs.getString(2));
        int[] f = formats(rs);
        expect(f[0] == 0 && f[1] == 0, "result formats " + f[0] + "," + f[1]);
      }
      return "setString parameters (text), text results: 42, 'héllo!'";
    }
  }

  static String extendedBinary() throws Exception {
    try (Connection c = connect("prepareThreshold=-1");
        PreparedStatement ps = c.prepareStatement("SELECT ?::int4 + 1, ?::bytea")) {
      ps.setInt(1, 41);
      ps.setBytes(2, new byte[] {0, 1, (byte) 0xff});
      try (ResultSet rs = ps.executeQuery()) {
        rs.next();
        byte[] b = rs.getBytes(2);
        expect(rs.getInt(1) == 42 && b.length == 3 && b[0] == 0 && b[1] == 1 && b[2] == (byte) 0xff, "got " + rs.getInt(1));
        int[] f = formats(rs);
        expect(f[0] == 1 && f[1] == 1, "result formats " + f[0] + "," + f[1]);
      }
      return "setInt/setBytes, prepareThreshold=-1: result format 1 for both columns, (42, 00 01 ff)";
    }
  }

  static long count(Connection c, String marker) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement("SELECT count(*) FROM items WHERE name = ?")) {
      ps.setString(1, marker);
      try (ResultSet rs = ps.executeQuery()) {
        rs.next();
        return rs.getLong(1);
      }
    }
  }

  static String txRollback() throws Exception {
    String marker = "jdbc-rollback-" + System.nanoTime();
    try (Connection c = connect("")) {
      c.setAutoCommit(false);
      try (PreparedStatement ps = c.prepareStatement("INSERT INTO items (name) VALUES (?)")) {
        ps.setString(1, marker);
        ps.executeUpdate();
      }
      long inside = count(c, marker);
      c.rollback();
      long after = count(c, marker);
      expect(inside == 1 && after == 0, "rows inside/after: " + inside + "/" + after);
      return "setAutoCommit(false): row visible inside, gone after rollback()";
    }
  }

  static String errorContinue() throws Exception {
    try (Connection c = connect("")) {
      String first = sqlstate(() -> one(c, "SELECT 1/0"));
      String second = sqlstate(() -> {
        try (PreparedStatement ps = c.prepareStatement("SELECT 1/?::int")) {
          ps.setInt(1, 0);
          return ps.executeQuery();
        }
      });
      expect(first.equals("22012") && second.equals("22012"), "sqlstates " + first + ", " + second);
      try (PreparedStatement ps = c.prepareStatement("SELECT ?::int * 2")) {
        ps.setInt(1, 21);
        try (ResultSet rs = ps.executeQuery()) {
          rs.next();
          expect(rs.getInt(1) == 42, "got " + rs.getInt(1));
        }
      }
      return first + " (Statement), " + second + " (PreparedStatement), then SELECT → 42";
    }
  }

  static String result10MB() throws Exception {
    try (Connection c = connect(""); Statement st = c.createStatement()) {
      long began = System.nanoTime();
      long total = 0, rows = 0;
      try (ResultSet rs = st.executeQuery("SELECT repeat('x', 1024) FROM generate_series(1, 10240)")) {
        while (rs.next()) {
          total += rs.getString(1).length();
          rows++;
        }
      }
      expect(total == 10L * 1024 * 1024, "got " + total + " bytes");
      return String.format("%d rows, %d bytes in %.2fs", rows, total, (System.nanoTime() - began) / 1e9);
    }
  }

  static String copyIn() throws Exception {
    try (Connection c = connect("")) {
      exec(c, "CREATE TEMP TABLE copy_in (id int, name text)");
      StringBuilder b = new StringBuilder();
      for (int i = 1; i <= 10000; i++) b.append(i).append("\trow ").append(i).append('\n');
      CopyManager cm = c.unwrap(PGConnection.class).getCopyAPI();
      long n = cm.copyIn("COPY copy_in (id, name) FROM STDIN", new StringReader(b.toString()));
      try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery("SELECT count(*), sum(id) FROM copy_in")) {
        rs.next();
        expect(n == 10000 && rs.getLong(1) == 10000 && rs.getLong(2) == 50005000L, "copied " + n + ", count " + rs.getLong(1));
      }
      return "CopyManager.copyIn: 10000 rows, sum(id) = 50005000";
    }
  }

  static String copyOut() throws Exception {
    try (Connection c = connect("")) {
      StringWriter w = new StringWriter();
      long n = c.unwrap(PGConnection.class).getCopyAPI()
          .copyOut("COPY (SELECT i, 'row ' || i FROM generate_series(1, 10000) i) TO STDOUT", w);
      String[] lines = w.toString().split("\n");
      expect(n == 10000 && lines.length == 10000 && lines[9999].equals("10000\trow 10000"), n + " rows, " + lines.length + " lines");
      return "CopyManager.copyOut: 10000 lines, " + w.toString().length() + " bytes";
    }
  }

  /** Notifications is what one LISTEN/NOTIFY exchange showed. */
  record Notifications(int driverPid, int sqlPid, int otherPid, List<PGNotification> got) {}

  static Notifications notifications() throws Exception {
    try (Connection c = connect(""); Connection other = connect("")) {
      PGConnection pg = c.unwrap(PGConnection.class);
      exec(c, "LISTEN " + CHANNEL);
      exec(c, "NOTIFY " + CHANNEL + ", 'from-self'");
      exec(other, "NOTIFY " + CHANNEL + ", 'from-other'");
      List<PGNotification> got = new ArrayList<>();
      long deadline = System.currentTimeMillis() + NOTIFY_WAIT_MS;
      while (got.size() < 2 && System.currentTimeMillis() < deadline) {
        PGNotification[] ns = pg.getNotifications(200);
        if (ns != null) got.addAll(List.of(ns));
      }
      int sqlPid = (Integer) one(c, "SELECT pg_backend_pid()");
      int otherPid = (Integer) one(other, "SELECT pg_backend_pid()");
      return new Notifications(pg.getBackendPID(), sqlPid, otherPid, got);
    }
  }

  static String listenNotify() throws Exception {
    List<String> payloads = new ArrayList<>();
    for (PGNotification n : notifications().got()) payloads.add(n.getParameter());
    payloads.sort(null);
    expect(payloads.equals(List.of("from-other", "from-self")), "received " + payloads);
    return "getNotifications(timeout) returned 'from-self' and 'from-other'";
  }

  static String notifySelfFilter() throws Exception {
    Notifications n = notifications();
    Map<String, Integer> byPayload = new LinkedHashMap<>();
    List<String> kept = new ArrayList<>();
    for (PGNotification x : n.got()) {
      byPayload.put(x.getParameter(), x.getPID());
      if (x.getPID() != n.driverPid()) kept.add(x.getParameter());
    }
    String detail = "own notification pid " + byPayload.get("from-self") + ", other's " + byPayload.get("from-other")
        + "; getBackendPID() " + n.driverPid() + ", pg_backend_pid() " + n.sqlPid() + ", other session " + n.otherPid();
    expect(kept.equals(List.of("from-other")), "filtering by pid kept " + kept + ": " + detail);
    return detail;
  }

  static String backendPid() throws Exception {
    try (Connection c = connect("")) {
      int driver = c.unwrap(PGConnection.class).getBackendPID();
      int sql = (Integer) one(c, "SELECT pg_backend_pid()");
      String detail = "getBackendPID() " + driver + ", pg_backend_pid() " + sql;
      expect(driver == sql, detail);
      return detail;
    }
  }

  /** waitRunning waits until backend pid runs pg_sleep(30), as another session sees it. */
  static void waitRunning(Connection other, int pid) throws Exception {
    long deadline = System.nanoTime() + (long) (CANCEL_LIMIT * 1e9);
    try (PreparedStatement ps = other.prepareStatement(
        "SELECT state = 'active' AND wait_event = 'PgSleep' AND query LIKE 'SELECT pg_sleep(30)%' FROM pg_stat_activity WHERE pid = ?")) {
      ps.setInt(1, pid);
      while (System.nanoTime() < deadline) {
        try (ResultSet rs = ps.executeQuery()) {
          if (rs.next() && rs.getBoolean(1)) return;
        }
        Thread.sleep(50);
      }
    }
    throw new AssertionError("pg_sleep(30) never showed as running");
  }

  static String cancel() throws Exception {
    try (Connection c = connect(""); Connection other = connect(""); Statement st = c.createStatement()) {
      int pid = (Integer) one(c, "SELECT pg_backend_pid()");
      long[] sent = new long[1];
      Thread canceller = new Thread(() -> {
        try {
          waitRunning(other, pid); // a cancel before the query starts would be ignored
          sent[0] = System.nanoTime();
          st.cancel();
        } catch (Exception e) {
          e.printStackTrace();
        }
      });
      canceller.start();
      String state = sqlstate(() -> st.executeQuery("SELECT pg_sleep(30)"));
      long ended = System.nanoTime();
      canceller.join();
      double took = (ended - sent[0]) / 1e9;
      expect(sent[0] != 0, "no cancel was sent");
      expect(state.equals("57014"), "sqlstate " + state);
      expect(took < CANCEL_LIMIT, "cancelled only after " + took + "s");
      expect(((Integer) one(c, "SELECT 1")) == 1, "connection unusable after cancel");
      return String.format("Statement.cancel() once the query ran: %s %.2fs later; connection reused", state, took);
    }
  }

  static String applicationName() throws Exception {
    try (Connection c = connect("ApplicationName=wp-matrix-jdbc")) {
      Object got = one(c, "SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()");
      expect("wp-matrix-jdbc".equals(got), "pg_stat_activity says " + got);
      return "ApplicationName=" + got;
    }
  }

  static String parameterStatus() throws Exception {
    try (Connection c = connect("")) {
      PGConnection pg = c.unwrap(PGConnection.class);
      String version = pg.getParameterStatus("server_version");
      String encoding = pg.getParameterStatus("client_encoding");
      Object shown = one(c, "SHOW server_version");
      expect(version.equals(shown), "server_version " + version + ", SHOW says " + shown);
      expect("UTF8".equals(encoding), "client_encoding " + encoding);
      exec(c, "SET application_name = 'wp-matrix-changed'");
      String changed = pg.getParameterStatus("application_name");
      expect("wp-matrix-changed".equals(changed), "application_name after SET: " + changed);
      return "getParameterStatus: server_version " + version + ", client_encoding " + encoding
          + ", application_name after SET " + changed;
    }
  }

  static String presetReadonly() throws Exception {
    try (Connection c = connect("options=-c%20waypoint_presets=readonly")) {
      Object user = one(c, "SELECT current_user");
      Object n = one(c, "SELECT count(*) FROM items");
      String state = sqlstate(() -> {
        try (Statement st = c.createStatement()) {
          return st.executeUpdate("INSERT INTO items (name) VALUES ('jdbc-readonly')");
        }
      });
      expect(state.equals("42501"), "INSERT as " + user + ": sqlstate " + state);
      return "options=-c%20waypoint_presets=readonly: SELECT ok (" + n + " rows), INSERT " + state + " as " + user;
    }
  }

  static boolean tlsInUse(Connection c) throws Exception {
    Object qe = c.unwrap(BaseConnection.class).getQueryExecutor();
    Field f = QueryExecutorBase.class.getDeclaredField("pgStream");
    f.setAccessible(true);
    return ((org.postgresql.core.PGStream) f.get(qe)).getSocket() instanceof SSLSocket;
  }

  static String tls(String port, String sslmode, boolean want) throws Exception {
    try (Connection c = connect(port, "sslmode=" + sslmode)) {
      boolean used = tlsInUse(c);
      expect(((Integer) one(c, "SELECT 1")) == 1, "SELECT 1");
      expect(used == want, "TLS in use: " + used);
      return "sslmode=" + sslmode + ": connected, TLS in use: " + used;
    }
  }

  static String tlsOffRequire() throws Exception {
    long began = System.nanoTime();
    try (Connection c = connect(PORT, "sslmode=require")) {
      throw new AssertionError("connected without TLS");
    } catch (SQLException e) {
      double took = (System.nanoTime() - began) / 1e9;
      expect(took < REFUSE_LIMIT, "failed only after " + took + "s");
      return String.format("refused after %.2fs: %s", took, e.getMessage());
    }
  }

  interface Feature {
    String run() throws Exception;
  }

  public static void main(String[] args) {
    Map<String, Feature> features = new LinkedHashMap<>();
    features.put("simple", JdbcMatrix::simple);
    features.put("extended_text", JdbcMatrix::extendedText);
    features.put("extended_binary", JdbcMatrix::extendedBinary);
    features.put("tx_rollback", JdbcMatrix::txRollback);
    features.put("error_continue", JdbcMatrix::errorContinue);
    features.put("result_10mb", JdbcMatrix::result10MB);
    features.put("copy_in", JdbcMatrix::copyIn);
    features.put("copy_out", JdbcMatrix::copyOut);
    features.put("listen_notify", JdbcMatrix::listenNotify);
    features.put("notify_self_filter", JdbcMatrix::notifySelfFilter);
    features.put("backend_pid", JdbcMatrix::backendPid);
    features.put("cancel", JdbcMatrix::cancel);
    features.put("application_name", JdbcMatrix::applicationName);
    features.put("parameter_status", JdbcMatrix::parameterStatus);
    features.put("preset_readonly", JdbcMatrix::presetReadonly);
    features.put("tls_off_prefer", () -> tls(PORT, "prefer", false));
    features.put("tls_off_require", JdbcMatrix::tlsOffRequire);
    features.put("tls_on_prefer", () -> tls(TLS_PORT, "prefer", true));
    features.put("tls_on_require", () -> tls(TLS_PORT, "require", true));

    System.out.println("{\"driver\":\"pgJDBC\",\"version\":" + json(DriverInfo.DRIVER_VERSION + " (Java " + Runtime.version().feature() + ")") + "}");
    for (Map.Entry<String, Feature> e : features.entrySet()) {
      boolean ok = true;
      String detail;
      try {
        detail = e.getValue().run();
      } catch (Throwable t) { // every failure is a result, not a crash
        ok = false;
        detail = t.getClass().getSimpleName() + ": " + t.getMessage();
        t.printStackTrace();
      }
      System.out.println("{\"feature\":" + json(e.getKey()) + ",\"ok\":" + ok + ",\"detail\":" + json(detail) + "}");
    }
  }

  static String json(String s) {
    StringBuilder b = new StringBuilder("\"");
    for (char ch : String.valueOf(s).toCharArray()) {
      switch (ch) {
        case '"' -> b.append("\\\"");
        case '\\' -> b.append("\\\\");
        case '\n' -> b.append("\\n");
        case '\r' -> b.append("\\r");
        case '\t' -> b.append("\\t");
        default -> {
          if (ch < 0x20) b.append(String.format("\\u%04x", (int) ch));
          else b.append(ch);
        }
      }
    }
    return b.append('"').toString();
  }
}
