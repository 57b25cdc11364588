// Java's HTTP server and client and its classic sockets, for
// integration/tests/apps/t_java_net.sh (compiled there with javac).
//   java JavaNet serve HTTP_PORT ECHO_PORT   the servers:
//       com.sun.net.httpserver.HttpServer (NIO selector, 4 worker threads):
//       GET /bytes/N answers N bytes (byte i is i*7 mod 251), POST /echo
//       answers its body; a java.net.ServerSocket echoing each connection
//       (a thread each) until its EOF.  Prints "listening" when both listen.
//   java JavaNet client HTTP_PORT ECHO_PORT  the client:
//       java.net.http.HttpClient (HTTP/1.1, its pool of kept-alive
//       connections): 300 GETs at once, each body checked, an 8 MiB POST
//       echoed, sha256 equal; then 4 java.net.Sockets at once, each sending
//       16 MiB of its own random bytes (a writer thread) and reading the
//       echo, sha256 equal.  Exit status 0 when all is well.
import com.sun.net.httpserver.HttpServer;
import java.io.*;
import java.net.*;
import java.net.http.*;
import java.security.MessageDigest;
import java.util.*;
import java.util.concurrent.*;

public class JavaNet {
    static byte[] pattern(int n) {
        byte[] b = new byte[n];
        for (int i = 0; i < n; i++) b[i] = (byte) ((i * 7) % 251);
        return b;
    }

    static String sha(byte[] b) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
    }

    public static void main(String[] a) throws Exception {
        int httpPort = Integer.parseInt(a[1]), echoPort = Integer.parseInt(a[2]);
        InetAddress lo = InetAddress.getByName("127.0.0.1");
        if (a[0].equals("serve")) {
            HttpServer hs = HttpServer.create(new InetSocketAddress(lo, httpPort), 100);
            hs.setExecutor(Executors.newFixedThreadPool(4));
            hs.createContext("/", ex -> {
                byte[] body;
                String path = ex.getRequestURI().getPath();
                if (ex.getRequestMethod().equals("POST") && path.equals("/echo"))
                    body = ex.getRequestBody().readAllBytes();
                else if (path.startsWith("/bytes/"))
                    body = pattern(Integer.parseInt(path.substring(7)));
                else {
                    ex.sendResponseHeaders(404, -1);
                    return;
                }
                ex.sendResponseHeaders(200, body.length == 0 ? -1 : body.length);
                try (OutputStream os = ex.getResponseBody()) { os.write(body); }
            });
            hs.start();
            ServerSocket ss = new ServerSocket(echoPort, 50, lo);
            Thread acceptor = new Thread(() -> {
                while (true) {
                    try {
                        Socket s = ss.accept();
                        new Thread(() -> {
                            try (s) { s.getInputStream().transferTo(s.getOutputStream()); }
                            catch (IOException e) { System.err.println("echo: " + e); }
                        }).start();
                    } catch (IOException e) { return; }
                }
            });
            acceptor.start();
            Runtime.getRuntime().addShutdownHook(new Thread(() -> {
                hs.stop(0);
                try { ss.close(); } catch (IOException e) { }
            }));
            System.out.println("listening");
            return;
        }
        HttpClient hc = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(java.time.Duration.ofSeconds(20)).build();
        String base = "http://127.0.0.1:" + httpPort;
        List<CompletableFuture<HttpResponse<byte[]>>> fs = new ArrayList<>();
        int[] sizes = new int[300];
        for (int i = 0; i < sizes.length; i++) {
            sizes[i] = (i * 7919) % 200000;
            fs.add(hc.sendAsync(HttpRequest.newBuilder(URI.create(base + "/bytes/" + sizes[i])).build(),
                HttpResponse.BodyHandlers.ofByteArray()));
        }
        for (int i = 0; i < sizes.length; i++) {
            HttpResponse<byte[]> r = fs.get(i).get(60, TimeUnit.SECONDS);
            if (r.statusCode() != 200 || !Arrays.equals(r.body(), pattern(sizes[i])))
                throw new Exception("GET /bytes/" + sizes[i] + ": status " + r.statusCode() + ", wrong body");
        }
        System.out.println("ok: 300 GETs at once through HttpClient, every body exact");
        byte[] big = new byte[8 << 20];
        new Random(30).nextBytes(big);
        HttpResponse<byte[]> r = hc.send(HttpRequest.newBuilder(URI.create(base + "/echo"))
            .POST(HttpRequest.BodyPublishers.ofByteArray(big)).build(), HttpResponse.BodyHandlers.ofByteArray());
        if (r.statusCode() != 200 || !sha(r.body()).equals(sha(big)))
            throw new Exception("POST /echo: status " + r.statusCode() + ", sha256 differs");
        System.out.println("ok: 8 MiB POST echoed, sha256 equal");

        ExecutorService pool = Executors.newCachedThreadPool();
        List<Future<String>> echoes = new ArrayList<>();
        for (int k = 0; k < 4; k++) {
            final int seed = k;
            echoes.add(pool.submit(() -> {
                try (Socket s = new Socket(lo, echoPort)) {
                    s.setSoTimeout(60000);
                    Future<String> w = pool.submit(() -> {
                        MessageDigest md = MessageDigest.getInstance("SHA-256");
                        Random rnd = new Random(seed);
                        byte[] chunk = new byte[65536];
                        OutputStream os = s.getOutputStream();
                        for (int n = 0; n < 256; n++) {
                            rnd.nextBytes(chunk);
                            md.update(chunk);
                            os.write(chunk);
                        }
                        s.shutdownOutput();
                        return HexFormat.of().formatHex(md.digest());
                    });
                    MessageDigest md = MessageDigest.getInstance("SHA-256");
                    InputStream is = s.getInputStream();
                    byte[] buf = new byte[65536];
                    long got = 0;
                    for (int n; (n = is.read(buf)) > 0; got += n) md.update(buf, 0, n);
                    if (!HexFormat.of().formatHex(md.digest()).equals(w.get()))
                        return "echo " + seed + ": sha256 differs (" + got + " bytes back)";
                }
                return null;
            }));
        }
        for (Future<String> f : echoes) {
            String e = f.get(120, TimeUnit.SECONDS);
            if (e != null) throw new Exception(e);
        }
        pool.shutdown();
        System.out.println("ok: 4 sockets at once each echoed 16 MiB, sha256 equal");
    }
}
